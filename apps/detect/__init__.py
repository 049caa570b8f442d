"""The detection app: real-time detection from a camera, video, stream or folder."""
