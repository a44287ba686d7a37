"""The server: the FastAPI app (OpenEnv API, Task API, MCP, the debugger at /web), its serving and hardening."""
