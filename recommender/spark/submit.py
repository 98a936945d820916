"""The ``recommender`` command as a script for ``spark-submit``, which runs a file, not a
console script; its master, deploy mode and memory then come from spark-submit::

    spark-submit --master yarn --deploy-mode client --driver-memory 8g \\
        "$(python -m recommender.spark.submit)" train --dir ws --engine spark --input hive:dw

Run with Python directly, it prints its own path (for the command above).
"""

from __future__ import annotations

import os
import sys

from recommender.cli import main

if __name__ == "__main__":
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # started by spark-submit
        sys.exit(main())
    print(os.path.abspath(__file__))
