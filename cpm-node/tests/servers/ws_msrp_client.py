#!/usr/bin/env python3
"""An MSRP WebSocket client (RFC 7977) written with Python's `websockets`
package, independently of the Rust code it tests.

    ws_msrp_client.py URL CA_PEM RELAY_URI ME USER PASSWORD PEER_USE_PATH PEER_URI

It connects to URL (wss://...) asking for the `msrp` subprotocol, AUTHs to
RELAY_URI with HTTP Digest (RFC 4976 s.5.1; RFC 2617 with qop=auth, H(A2)
over the rightmost To-Path URI), prints `USE-PATH <uri>`, receives one
message (any number of chunks, each answered 200), prints
`GOT <bytes> <sha256>`, sends the same body back to PEER_URI through
PEER_USE_PATH as one SEND, prints `SENT`, waits for its 200 and exits 0.
"""
import asyncio
import hashlib
import os
import re
import ssl
import sys

import websockets

FRAME = re.compile(rb"^MSRP (\S+) ([^\r\n]*)\r\n", re.S)


def tid():
    return os.urandom(8).hex()


def parse(raw):
    m = FRAME.match(raw)
    if not m:
        raise ValueError("not an MSRP frame: %r" % raw[:80])
    t, rest = m.group(1).decode(), m.group(2).decode()
    end = raw.rfind(b"\r\n-------" + t.encode())
    if end < 0 and raw.startswith(b"MSRP"):
        end = raw.rfind(b"-------" + t.encode()) - 2
    flag = raw[-3:-2].decode()
    head_end = raw.find(b"\r\n\r\n")
    if 0 <= head_end < end:
        head, body = raw[m.end():head_end + 2], raw[head_end + 4:end]
    else:
        head, body = raw[m.end():end + 2], b""
    headers = {}
    for line in head.decode().split("\r\n"):
        if ": " in line:
            k, v = line.split(": ", 1)
            headers[k.lower()] = v
    return t, rest, headers, body, flag


def frame(t, first_line, headers, body=None, flag="$"):
    out = "MSRP %s %s\r\n" % (t, first_line)
    for k, v in headers:
        out += "%s: %s\r\n" % (k, v)
    data = out.encode()
    if body is not None:
        data += b"\r\n" + body + b"\r\n"
    return data + ("-------%s%s\r\n" % (t, flag)).encode()


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


async def main():
    url, ca, relay, me, user, password, peer_use_path, peer = sys.argv[1:9]
    ctx = ssl.create_default_context(cafile=ca)
    async with websockets.connect(url, subprotocols=["msrp"], ssl=ctx, max_size=None) as ws:
        assert ws.subprotocol == "msrp", ws.subprotocol
        await ws.send(frame(tid(), "AUTH", [("To-Path", relay), ("From-Path", me)]))
        t, rest, h, _, _ = parse(await ws.recv())
        assert rest.startswith("401"), rest
        ch = dict(re.findall(r'(\w+)="?([^",]*)"?', h["www-authenticate"]))
        cnonce, nc = os.urandom(4).hex(), "00000001"
        ha1 = md5("%s:%s:%s" % (user, ch["realm"], password))
        ha2 = md5("AUTH:%s" % relay)
        response = md5(":".join([ha1, ch["nonce"], nc, cnonce, "auth", ha2]))
        auth = ('Digest username="%s", realm="%s", nonce="%s", uri="%s", qop=auth, nc=%s, '
                'cnonce="%s", response="%s"') % (user, ch["realm"], ch["nonce"], relay, nc, cnonce, response)
        await ws.send(frame(tid(), "AUTH", [("To-Path", relay), ("From-Path", me), ("Authorization", auth)]))
        t, rest, h, _, _ = parse(await ws.recv())
        assert rest.startswith("200"), rest
        print("USE-PATH", h["use-path"], flush=True)

        got = bytearray()
        while True:
            t, rest, h, body, flag = parse(await ws.recv())
            if not rest.startswith("SEND"):
                continue
            start = int(h["byte-range"].split("-")[0])
            assert start == len(got) + 1, (start, len(got))
            got += body
            await ws.send(frame(t, "200 OK", [("To-Path", h["from-path"].split(" ")[0]), ("From-Path", me)]))
            if flag == "$":
                break
        print("GOT", len(got), hashlib.sha256(got).hexdigest(), flush=True)

        t = tid()
        await ws.send(frame(t, "SEND", [("To-Path", "%s %s" % (peer_use_path, peer)), ("From-Path", me),
                                        ("Message-ID", "echo1"), ("Byte-Range", "1-%d/%d" % (len(got), len(got))),
                                        ("Content-Type", "application/octet-stream")], bytes(got)))
        print("SENT", flush=True)
        while True:
            rt, rest, _, _, _ = parse(await ws.recv())
            if rt == t and rest.startswith("200"):
                return 0


sys.exit(asyncio.run(main()))
