#!/usr/bin/env python3
"""Every scenario of t_mux.py (the multiplexed /ws: subscribe, publish with
acks, resume, gaps, binary frames, errors, floods) again with --threads 3,
so that its clients land on different WebSocket loops and what one
publishes crosses loops. gwlib adds --threads from ANYPUSH_TEST_THREADS to
every gateway the script starts."""
import os
import runpy
from pathlib import Path

os.environ["ANYPUSH_TEST_THREADS"] = "3"
runpy.run_path(str(Path(__file__).with_name("t_mux.py")), run_name="__main__")
