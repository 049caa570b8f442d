"""The face-check kiosk: its durable gallery of enrolled people."""
