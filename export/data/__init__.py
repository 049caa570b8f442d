"""Local, deterministic data: digits, generated detection scenes and videos, faces (numpy/OpenCV; no torch here)."""
