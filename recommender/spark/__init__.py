"""Training and batch scoring on Apache Spark, writing the same model versions as local training.

An operator whose customers and events live in a data warehouse keeps the project when one
machine is no longer enough: ``recommender train --engine spark`` reads the import schema's
tables (customers, terminals, holdings, events) from Parquet, CSV or Hive, fits every strategy
that has a Spark fit on the cluster and writes a model version (arrays, manifest, checksums)
that ``recommender serve`` loads unchanged.

- :mod:`.session`: the Spark session (``--master``), and the checks for pyspark and Java;
- :mod:`.tables`: the import schema's tables, read and coded as positions (``SparkData``);
- :mod:`.fits`: the built-in strategies' Spark fits, keyed by strategy name;
- :mod:`.mining`: association rules from MLlib FP-Growth's itemsets, exactly as the local miner;
- :mod:`.train`: the model version, through ``recommender.models.train_models``;
- :mod:`.scoring`: ``recommender batch`` and ``target`` over the tables, a partition at a time;
- :mod:`.plugin`: strategies fitted on Spark wherever ``fit`` is called (``evaluate``);
- :mod:`.cli`: the ``--engine``, ``--master``, ``--input`` and ``--sample`` options;
- :mod:`.submit`: the command as a file for ``spark-submit``.

Nothing here imports pyspark until it is used: the package is importable without the
``spark`` extra, and says how to install it when asked to run.
"""
