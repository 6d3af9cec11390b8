#!/usr/bin/env python3
"""Static files and symlinks: nothing is served through a symlink under
the web root, neither a linked file nor a file inside a linked folder
(O_NOFOLLOW alone covers only the last path component, so a linked
folder used to be followed out of the web root). The web root itself may
be a symlink."""

import os
import shutil
import tempfile

from gwlib import Gateway, check, expect_eq, expect_error, get, run

SECRET = b"TOPSECRET outside the web root"


def make_tree():
    """base/web (the root), base/outside (with secret.txt); returns (base, web)."""
    base = tempfile.mkdtemp(prefix="webroot-links-")
    web = os.path.join(base, "web")
    outside = os.path.join(base, "outside")
    os.makedirs(os.path.join(web, "sub"))
    os.makedirs(outside)
    with open(os.path.join(web, "index.html"), "wb") as f:
        f.write(b"<!doctype html><title>links</title>")
    with open(os.path.join(web, "sub", "real.txt"), "wb") as f:
        f.write(b"a real file in a real folder")
    with open(os.path.join(outside, "secret.txt"), "wb") as f:
        f.write(SECRET)
    # a folder link and a file link pointing out of the root
    os.symlink(outside, os.path.join(web, "linkdir"))
    os.symlink(os.path.join(outside, "secret.txt"), os.path.join(web, "linkfile.txt"))
    # a relative folder link deeper down, climbing out
    os.symlink("../../outside", os.path.join(web, "sub", "up"))
    # links that stay inside the root are refused as well: no link is followed
    os.symlink("index.html", os.path.join(web, "inner.html"))
    os.symlink("sub", os.path.join(web, "innerdir"))
    return base, web


def refused(gw, path):
    r = get(gw, path)
    check(SECRET not in r[2], f"GET {path} served the file outside the web root")
    expect_error(r, 404, "not_found", f"GET {path}")


async def test_dir_symlink_not_followed():
    "a folder symlink inside the web root is not followed: 404, not the file"
    base, web = make_tree()
    try:
        with Gateway("--web-root", web) as gw:
            st, _, body = get(gw, "/sub/real.txt")
            expect_eq((st, body), (200, b"a real file in a real folder"), "GET /sub/real.txt")
            for p in ("/linkdir/secret.txt", "/sub/up/secret.txt", "/innerdir/real.txt"):
                refused(gw, p)
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_file_symlink_not_followed():
    "a file symlink inside the web root is 404, wherever it points"
    base, web = make_tree()
    try:
        with Gateway("--web-root", web) as gw:
            for p in ("/linkfile.txt", "/inner.html"):
                refused(gw, p)
            st, _, body = get(gw, "/")
            expect_eq((st, body), (200, b"<!doctype html><title>links</title>"), "GET /")
    finally:
        shutil.rmtree(base, ignore_errors=True)


async def test_root_may_be_a_symlink():
    "--web-root naming a symlink to a folder serves that folder"
    base, web = make_tree()
    try:
        root_link = os.path.join(base, "root-link")
        os.symlink(web, root_link)
        with Gateway("--web-root", root_link) as gw:
            st, _, body = get(gw, "/sub/real.txt")
            expect_eq((st, body), (200, b"a real file in a real folder"), "GET /sub/real.txt via a linked root")
            refused(gw, "/linkdir/secret.txt")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(run([test_dir_symlink_not_followed, test_file_symlink_not_followed,
                          test_root_may_be_a_symlink]))
