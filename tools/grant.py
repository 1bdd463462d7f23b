"""The owner's and the operator's keys (firmware/PROTOCOL.md, "Viewer
authorization" and "Admission"):

    python tools/grant.py provision [--secrets firmware/secrets.py]
        a new camera secret: written into secrets.py as CAMERA_SECRET (kept
        if there is one already; --rotate replaces it, which revokes every
        grant issued so far)
    python tools/grant.py issue --viewer alice --hours 24 [--camera ID] [--secrets F] [--out FILE]
        a viewer grant for this camera (tools/viewer.py --grant FILE)
    python tools/grant.py server-secret FILE
        a new secret for the signaling server's room credentials (or coturn's
        static-auth-secret): 32 random bytes as hex
    python tools/grant.py room --server-secret FILE --room R --role viewer --hours 24
        a room credential the signaling server admits (--room-secret FILE)

Secrets are never printed, only written to files; grants and credentials
are printed (or written with --out).
"""

import argparse
import ast
import os
import re
import secrets as random_source
import sys
import time

import admission
from camlink import grants

DEFAULT_SECRETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware", "secrets.py")


def _settings(path):
    """The simple NAME = literal assignments of a secrets.py."""
    found = {}
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return found


def provision(path, rotate=False):
    """Write a CAMERA_SECRET into `path` (made if missing); returns what was done."""
    text = open(path).read() if os.path.exists(path) else ""
    line = 'CAMERA_SECRET = "%s"  # tools/grant.py provision; never share or log it' % random_source.token_hex(32)
    existing = re.search(r"^CAMERA_SECRET\s*=.*$", text, re.M)
    if existing and not rotate:
        return "kept the CAMERA_SECRET already in %s (--rotate replaces it and revokes every grant)" % path
    if existing:
        text = text[:existing.start()] + line + text[existing.end():]
    else:
        text = text + ("" if not text or text.endswith("\n") else "\n") + line + "\n"
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return "%s CAMERA_SECRET in %s; deploy it to the camera (make deploy)" % ("rotated" if existing else "wrote", path)


def _write_or_print(text, out):
    if out:
        with open(out, "w") as f:
            f.write(text + "\n")
        os.chmod(out, 0o600)
    else:
        print(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("provision", help="write a camera secret into secrets.py")
    p.add_argument("--secrets", default=DEFAULT_SECRETS)
    p.add_argument("--rotate", action="store_true", help="replace the secret: every grant issued so far stops working")
    p = sub.add_parser("issue", help="a viewer grant")
    p.add_argument("--secrets", default=DEFAULT_SECRETS)
    p.add_argument("--camera", help="the camera's id (default: CAMERA_ID, else ROOM, in secrets.py)")
    p.add_argument("--viewer", required=True, help="who the grant is for (letters, digits, -_.@)")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--out", help="write the grant to this file (mode 600) instead of printing it")
    p = sub.add_parser("server-secret", help="a secret for the signaling server or coturn")
    p.add_argument("file")
    p = sub.add_parser("room", help="a room credential for the signaling server")
    p.add_argument("--server-secret", required=True, metavar="FILE")
    p.add_argument("--room", required=True)
    p.add_argument("--role", choices=("camera", "viewer"), required=True)
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--out")
    args = parser.parse_args(argv)
    try:
        if args.command == "provision":
            print(provision(args.secrets, args.rotate))
        elif args.command == "issue":
            settings = _settings(args.secrets)
            if "CAMERA_SECRET" not in settings:
                parser.error("%s has no CAMERA_SECRET: run `tools/grant.py provision` first" % args.secrets)
            camera = args.camera or settings.get("CAMERA_ID") or settings.get("ROOM", "camera")
            expires = int(time.time() + args.hours * 3600)
            grant = grants.issue(bytes.fromhex(settings["CAMERA_SECRET"]), camera, args.viewer, expires)
            _write_or_print(grant, args.out)
        elif args.command == "server-secret":
            with open(os.open(args.file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(random_source.token_hex(32) + "\n")
            print("wrote a secret to %s" % args.file)
        else:
            with open(args.server_secret) as f:
                secret = bytes.fromhex(f.read().strip())
            expires = int(time.time() + args.hours * 3600)
            _write_or_print(admission.issue_room_credential(secret, args.room, args.role, expires), args.out)
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
