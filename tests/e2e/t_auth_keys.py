#!/usr/bin/env python3
"""Client tokens signed with a key pair (docs/security.md): a PEM public
key in --token-secret-file makes the gateway take RS256 or ES256 tokens.
Keys come from the openssl CLI and tokens are minted here with the
standard library plus `openssl dgst -sign`, as a backend without a JWT
library would; an ES256 signature is turned from openssl's DER into the
64-byte r||s that JOSE wants. Refused: another key of the same type, HS256
with the public key's text as the HMAC secret (algorithm confusion), alg
none, the other key type's algorithm, a tampered payload, an expired one;
and a private key in the option stops the start."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import tempfile
import time

from gwlib import Gateway, MuxClient, SSEClient, binary_path, check, expect_eq, expect_error, get, request, run

API_KEY = "k-" + "5" * 30
A = {"sub": "alice", "channels": ["a", "pub*"], "publish": ["a"]}

_keys = None


def keys():
    """rsa, rsa2 (2048 bits), ec, ec2 (P-256): {name: (private, public)}
    paths in one temp dir, made once per run."""
    global _keys
    if _keys is not None:
        return _keys
    d = tempfile.mkdtemp(prefix="authkeys-")
    gen = {"rsa": ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
           "ec": ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]}
    _keys = {}
    for name in ("rsa", "rsa2", "ec", "ec2"):
        priv, pub = os.path.join(d, name + ".pem"), os.path.join(d, name + ".pub")
        subprocess.run(["openssl", "genpkey", *gen[name.rstrip("2")], "-out", priv], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        _keys[name] = (priv, pub)
    with open(os.path.join(d, "api.key"), "w") as f:
        f.write(API_KEY + "\n")
    _keys["api"] = os.path.join(d, "api.key")
    return _keys


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def der_to_jose(der, size=32):
    """An ECDSA signature, DER SEQUENCE { INTEGER r, INTEGER s }, as the
    fixed-size big-endian r||s of JWS (RFC 7518 3.4)."""
    def length(i):
        n = der[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7F
        return int.from_bytes(der[i + 1:i + 1 + k], "big"), i + 1 + k

    check(der[0] == 0x30, f"an ECDSA signature is a SEQUENCE: {der.hex()}")
    total, i = length(1)
    check(i + total == len(der), f"the SEQUENCE fills the signature: {der.hex()}")
    out = b""
    for _ in range(2):
        check(der[i] == 0x02, f"r and s are INTEGERs: {der.hex()}")
        n, i = length(i + 1)
        v = der[i:i + n].lstrip(b"\0")  # a leading 0 keeps a high bit positive
        check(len(v) <= size, f"an integer of {len(v)} bytes for P-256")
        out += v.rjust(size, b"\0")
        i += n
    check(i == len(der), "nothing after s")
    return out


def sign(priv, alg, data):
    """openssl dgst over data with the private key; ES* as JOSE wants it."""
    digest = {"256": "-sha256", "384": "-sha384", "512": "-sha512"}[alg[2:]]
    sig = subprocess.run(["openssl", "dgst", digest, "-sign", priv], input=data, check=True,
                         capture_output=True).stdout
    return der_to_jose(sig) if alg.startswith("ES") else sig


def mint(claims=None, key=None, alg="RS256", ttl=60, secret=None, tamper=None):
    """A JWT as a backend mints it with a private key (key: a name from
    keys()), or with an HMAC secret for HS*; alg none has no signature.
    tamper: claims put in the payload after signing."""
    body = {"exp": int(time.time()) + ttl}
    body.update(claims or {})
    head = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    pay = b64(json.dumps(body).encode())
    data = f"{head}.{pay}".encode()
    if alg == "none":
        sig = b""
    elif alg.startswith("HS"):
        sig = hmac.new(secret, data, hashlib.sha256).digest()
    else:
        sig = sign(keys()[key][0], alg, data)
    if tamper:
        pay = b64(json.dumps(dict(body, **tamper)).encode())
    return f"{head}.{pay}.{b64(sig)}"


def gateway(kind):
    k = keys()
    return Gateway("--token-secret-file", k[kind][1], "--api-key-file", k["api"], "--heartbeat", "1")


def post(gw, ch, data, headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    return request(gw, "POST", f"/channels/{ch}", body=json.dumps(data).encode(), headers=h)


def bearer(tok):
    return {"Authorization": "Bearer " + tok}


async def grants(kind, alg):
    "a valid token subscribes by SSE and poll and publishes where its claims say"
    with gateway(kind) as gw:
        tok = mint(A, key=kind, alg=alg)
        s = SSEClient(gw, "a", since="0", headers=bearer(tok))
        await s.start()
        expect_eq(s.head.headers.get("x-client-id"), "alice", f"{alg}: the SSE client id is the sub")
        expect_eq(post(gw, "a", {"n": 1}, bearer(tok))[0], 201, f"{alg}: publish to a")
        await s.wait_for(lambda: len(s.messages) == 1, 5, f"{alg}: the SSE stream gets the publish")
        expect_eq([m["data"] for m in s.messages], [{"n": 1}], f"{alg}: SSE data")
        s.abort()
        st, hdrs, body = get(gw, "/channels/a?transport=poll&since=0", bearer(tok))
        expect_eq(st, 200, f"{alg}: poll a")
        expect_eq([m["data"] for m in json.loads(body)["messages"]], [{"n": 1}], f"{alg}: poll history")
        expect_eq(get(gw, "/channels/pubx?transport=poll", bearer(tok))[0], 200, f"{alg}: a *-pattern")
        expect_error(post(gw, "b", 1, bearer(tok)), 403, "forbidden", f"{alg}: publish to b")
        expect_error(post(gw, "pubx", 1, bearer(tok)), 403, "forbidden", f"{alg}: readable is not publishable")
        expect_error(get(gw, "/channels/b?transport=poll", bearer(tok)), 403, "forbidden", f"{alg}: poll b")
        m = MuxClient(gw, extra_query=[("token", tok)])
        await m.start()
        await m.subscribe("a")
        await m.ok_op({"op": "auth", "token": mint(A, key=kind, alg=alg)})


async def test_rs256_grants():
    "RS256 with an RSA public key: SSE, poll and publish as the claims allow"
    await grants("rsa", "RS256")


async def test_es256_grants():
    "ES256 with a P-256 public key: SSE, poll and publish as the claims allow"
    await grants("ec", "ES256")


def pem_text(kind):
    with open(keys()[kind][1], "rb") as f:
        return f.read()


async def refused(kind, alg, bad):
    with gateway(kind) as gw:
        m = MuxClient(gw)
        await m.start()
        for what, (tok, code) in bad.items():
            what = f"{alg} gateway, {what}"
            expect_error(get(gw, "/channels/a?transport=poll", bearer(tok)), 401, code, what)
            expect_error(post(gw, "a", {"x": 1}, bearer(tok)), 401, code, f"publish with {what}")
            f = await m.op({"op": "auth", "token": tok})
            expect_eq(f.get("code"), code, f"/ws auth op with {what}")
        st, _, body = get(gw, "/channels/a/info", {"Authorization": "apikey " + API_KEY})
        expect_eq(json.loads(body)["last_id"], 0, f"{alg} gateway: no refused publish was stored")


def common_refusals(kind, other, alg):
    good = mint(A, key=kind, alg=alg)
    pem = pem_text(kind)
    head, _, sig = good.split(".")
    return {
        "another key of the same type": (mint(A, key=other, alg=alg), "bad_token"),
        # libjwt follows the header: with HS256 it would HMAC with the PEM
        "HS256 with the public key file as secret": (mint(A, alg="HS256", secret=pem), "bad_token"),
        "HS256 with the PEM, whitespace cut": (mint(A, alg="HS256", secret=pem.strip()), "bad_token"),
        "alg none": (mint(A, alg="none"), "bad_token"),
        "alg none with a valid signature kept": (
            mint(A, alg="none").rsplit(".", 1)[0] + "." + sig, "bad_token"),
        "tampered payload": (mint(A, key=kind, alg=alg, tamper={"publish": ["*"]}), "bad_token"),
        "tampered header": (b64(json.dumps({"alg": alg, "typ": "JWT", "kid": "x"}).encode()) +
                            good[len(head):], "bad_token"),
        "a signature cut short": (good[:-8], "bad_token"),
        "expired": (mint(A, key=kind, alg=alg, ttl=-5), "token_expired"),
    }


async def test_rs256_refused():
    "RSA gateway: other RSA key, HS256 with the PEM, none, ES256, RS512, tampered, expired: 401"
    bad = common_refusals("rsa", "rsa2", "RS256")
    bad["ES256 by an EC key"] = (mint(A, key="ec", alg="ES256"), "bad_token")
    bad["RS512 by the right key"] = (mint(A, key="rsa", alg="RS512"), "bad_token")
    await refused("rsa", "RS256", bad)


async def test_es256_refused():
    "EC gateway: other EC key, HS256 with the PEM, none, RS256, DER signature, tampered, expired: 401"
    bad = common_refusals("ec", "ec2", "ES256")
    bad["RS256 by an RSA key"] = (mint(A, key="rsa", alg="RS256"), "bad_token")
    head_pay = mint(A, key="ec", alg="ES256").rsplit(".", 1)[0]
    der = subprocess.run(["openssl", "dgst", "-sha256", "-sign", keys()["ec"][0]], input=head_pay.encode(),
                         check=True, capture_output=True).stdout
    bad["ES256 with the DER signature, not r||s"] = (head_pay + "." + b64(der), "bad_token")
    es384 = b64(json.dumps({"alg": "ES384", "typ": "JWT"}).encode())
    bad["ES384 header, ES256 signature"] = (es384 + "." + mint(A, key="ec", alg="ES256").split(".", 1)[1],
                                            "bad_token")
    await refused("ec", "ES256", bad)


async def test_hs256_gateway_refuses_keys():
    "a gateway with an HS256 secret refuses RS256 and ES256 tokens"
    d = tempfile.mkdtemp(prefix="authkeys-hs-")
    s = os.path.join(d, "secret")
    with open(s, "wb") as f:
        f.write(b"hs-secret-0123456789abcdef\n")
    with Gateway("--token-secret-file", s) as gw:
        expect_eq(get(gw, "/channels/a?transport=poll",
                      bearer(mint(A, alg="HS256", secret=b"hs-secret-0123456789abcdef")))[0], 200,
                  "the HS256 token itself")
        for alg, key in (("RS256", "rsa"), ("ES256", "ec")):
            expect_error(get(gw, "/channels/a?transport=poll", bearer(mint(A, key=key, alg=alg))), 401,
                         "bad_token", f"an {alg} token at an HS256 gateway")


async def test_private_key_refused_at_start():
    "a private key in --token-secret-file stops the start (libjwt would refuse every token silently)"
    k = keys()
    rsa1 = os.path.join(os.path.dirname(k["rsa"][0]), "rsa1.pub")
    subprocess.run(["openssl", "rsa", "-in", k["rsa"][0], "-RSAPublicKey_out", "-out", rsa1], check=True,
                   capture_output=True)
    for kind in ("rsa", "ec"):
        r = subprocess.run([binary_path(), "--config", "", "--port", "0", "--token-secret-file", k[kind][0]],
                           capture_output=True, timeout=10)
        expect_eq(r.returncode, 1, f"{kind} private key: exit status")
        check(b"must be a public key" in r.stdout + r.stderr, f"{kind}: the reason: {r.stderr[-300:]!r}")
    # an RSA public key in its PKCS#1 form (-----BEGIN RSA PUBLIC KEY-----)
    # is one libjwt reads
    with Gateway("--token-secret-file", rsa1) as gw:
        expect_eq(get(gw, "/channels/a?transport=poll", bearer(mint(A, key="rsa")))[0], 200,
                  "RS256 with the PKCS#1 public key")


if __name__ == "__main__":
    run([test_rs256_grants, test_es256_grants, test_rs256_refused, test_es256_refused,
         test_hs256_gateway_refuses_keys, test_private_key_refused_at_start], budget=90.0)
