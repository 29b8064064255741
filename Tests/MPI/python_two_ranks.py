# Run by Tests/MPI/run.sh under `mpirun -np 2`: the Python binding's Trainer with a "distributed"
# block joins the MPI job (libtransface loads Open MPI itself); each rank trains on its half of
# each global batch and writes its losses and gradient norms to OUT.<rank>, which must agree
# across ranks (and the replica checksum runs every step).
#
#   mpirun -np 2 python3 Tests/MPI/python_two_ranks.py OUT
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import transface  # noqa: E402

rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
config = {"arch": "custom", "model": {"img_size": 36, "embed_dim": 32, "depth": 1, "num_heads": 4, "mlp_hidden_dim": 64},
          "embedding_size": 16, "num_classes": 10, "batch_size": 4, "threads": 1, "seed": 3,
          "distributed": {"checksum_every": 1}}
trainer = transface.Trainer(config)
rng = np.random.default_rng(7)
values = []
for step in range(3):
    images = rng.integers(0, 256, size=(8, 36, 36, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=8)
    r = trainer.step(images[4 * rank:4 * rank + 4], labels[4 * rank:4 * rank + 4])
    values += [r["loss"], r["gradient_norm"]]
with open(f"{sys.argv[1]}.{rank}", "w") as out:
    out.write(" ".join(repr(v) for v in values) + "\n")
