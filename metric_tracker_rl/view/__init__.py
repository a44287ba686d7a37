"""What a model reads: the text rendering of a value (render), the system prompt and the brief (prompt), the tools
offered and a call read as an action (tool_schemas), and a step as text with its structured view (observation).
Every harness renders the text here from the observation it received: the server sends structure only."""
