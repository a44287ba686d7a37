"""The /web debugger, mounted on the app when the web interface is on (`mount`): a Gradio page (`page`, laid out
part by part in `layout`) whose every tab plays its own episode over the server's `/ws` sessions (`tabs`), its
events bounded per visitor (`event_queue`) on a queue that rests while nobody uses the page (`quiet_queue`), its
memory handed back after a burst (`memory`). What it shows is written by pure functions: `forms` (forms and
tables), `charts` (SVG charts), `cuboid` (a segmented episode's cuboid view), `images` (PNG and favicon); `theme`
is the page's offline theme. Importing this package loads nothing: gradio comes with `mount` and `page`."""
