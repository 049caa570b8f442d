"""edgepipe applications: the command line, the detection app and the face-check kiosk."""
