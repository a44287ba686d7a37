"""The server side: the episode state machine (environment), the FastAPI app (OpenEnv API, Task API, MCP, the
debugger at /web), its sessions and admission, hardening, lifecycle and process, and a local server for tests and
harnesses. Only here do the generator, the grader and the tools meet."""
