"""What a model reads: the text rendering of a value (render) and its reader, the system prompt and the brief
(prompt), the tools offered and a call read as an action (tool_schemas), and a step as text with its structured
view (observation)."""
