"""`edgepipe dev postgres|mqtt`: a throwaway server on this machine for trying a fleet (deleted when it stops)."""

from __future__ import annotations

import argparse
import contextlib
import threading

from edgepipe.apps.devservers import ThrowawayMosquitto, ThrowawayPostgres
from edgepipe.apps.stream.loop import stop_on_sigterm


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dev", help="a throwaway PostgreSQL or MQTT server for trying a fleet on this machine",
                       description="Start a throwaway server on 127.0.0.1 in a temporary folder, print its URL, and "
                       "run until Ctrl-C or SIGTERM, which stop it and delete its data. Needs Debian's postgresql or "
                       "mosquitto package.")
    servers = p.add_subparsers(dest="server", metavar="SERVER", required=True)
    for name, text in (("postgres", "a PostgreSQL cluster for a shared gallery (no password, localhost only)"),
                       ("mqtt", "a Mosquitto broker for the events (anonymous, localhost only)")):
        q = servers.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        q.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free one)")
        q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.server == "postgres":
        server: ThrowawayPostgres | ThrowawayMosquitto = ThrowawayPostgres(args.port)
        tries = [f"edgepipe face import gallery.json --gallery {server.url}",
                 f"edgepipe kiosk --gallery {server.url} --source 0 --detector face.onnx --encoder facenet.onnx"]
    else:
        server = ThrowawayMosquitto(args.port)
        tries = [f"edgepipe detect --model yolo.onnx --source clip.mp4 --line door=320,0,320,480 --publish "
                 f"{server.url}/edgepipe", f"mosquitto_sub -h 127.0.0.1 -p {server.port} -t 'edgepipe/#' -v"]
    stop = threading.Event()
    with stop_on_sigterm(stop), server:
        print(f"{args.server} running at {server.url} (data in {server.folder}); Ctrl-C stops it and deletes it",
              flush=True)
        for line in tries:
            print(f"  try: {line}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C, like SIGTERM, stops the server
            stop.wait()
    print(f"{args.server} stopped, {server.folder} deleted", flush=True)
    return 0
