"""The camera apps' shared floor: sources and capture, the frame loop, sinks, the overlay and the browser view."""
