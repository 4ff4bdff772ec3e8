"""``./gan tensorboard``: TensorBoard on a pipeline's training logs.

GanTrainer writes each training's TensorBoard events (losses, D's accuracies, images/s, the
training FID ``fid_random_cnn``, sample images) into its ModelRun artifact,
``<output_dir>/pipeline_root/GanTrainer/model_run/<execution id>/``. TensorBoard is started on
the ``model_run`` folder, so every training of the pipeline is one TensorBoard run, named by its
execution id.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
from tfx_gan.pipeline.run import add_arguments as add_config_arguments
from tfx_gan.pipeline.run import config_from_args

TRAINER_ID = "GanTrainer"  # the trainer's node id in pipeline/pipeline.py (the class name: no with_id)


def training_logs_dir(config) -> str:
    """The folder that holds one subfolder of TensorBoard events per training of the pipeline."""
    return os.path.join(config.pipeline_root, TRAINER_ID, "model_run")


def add_arguments(parser: argparse.ArgumentParser) -> None:

    add_config_arguments(parser)
    parser.add_argument("--port", type=int, default=None,
                        help="port to listen on (default: 6006, or the next free one; 0 picks any free port)")
    parser.add_argument("--host", default="localhost",
                        help="address to listen on (default: %(default)s; 0.0.0.0 lets other machines connect)")


def run(args: argparse.Namespace) -> int:

    config = config_from_args(args)
    if config is None:
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        print(f"error: --port {args.port} is not a port number: give 0..65535 (0 picks a free one)", file=sys.stderr)
        return 2
    try:  # werkzeug exits(1) on a --host it cannot listen on, printing only the system's message
        socket.create_server((args.host, 0)).close()
    except OSError as e:
        print(f"error: cannot listen on --host {args.host!r} ({(e.strerror or str(e)).split(' (while attempting')[0]}): give an address of this machine "
              "(localhost, 127.0.0.1, or 0.0.0.0 for every interface)", file=sys.stderr)
        return 2
    logdir = training_logs_dir(config)
    if not os.path.isdir(logdir) or not os.listdir(logdir):
        print(f"error: no training logs under {logdir} yet: train first with ./gan run --config {args.config}",
              file=sys.stderr)
        return 2

    from tensorboard import program

    tensorboard = program.TensorBoard()
    # The Python loader: the fast (Rust) one logs a line every 5 s, and these logs are small.
    argv = [None, "--logdir", logdir, "--host", args.host, "--load_fast", "false"]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    tensorboard.configure(argv=argv)
    try:
        url = tensorboard.launch()
    except program.TensorBoardServerException as e:  # a port in use, an address not of this machine
        print(f"error: cannot start TensorBoard on {args.host}:{args.port}: {e.msg}; pick another --port or --host",
              file=sys.stderr)
        return 2
    print(f"TensorBoard on the training logs of {config.pipeline_name} ({logdir}): {url}  (Ctrl-C stops it)",
          flush=True)
    try:
        threading.Event().wait()  # the server runs in TensorBoard's own threads
    except KeyboardInterrupt:  # Ctrl-C is how it stops
        print("TensorBoard stopped")
    return 0
