"""The face-check kiosk: the face pipeline, the gallery, the face services and the kiosk loop."""
