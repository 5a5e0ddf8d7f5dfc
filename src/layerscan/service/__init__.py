"""The analyzer service around the pipeline: state and report store, queue, workers, submit.

    store.py    images, tags, reports, workers and the job queue (SQLAlchemy Core; SQLite by default)
    schema.py   the tables (Alembic migrations in migrations/ create them)
    submit.py   resolve a reference at its registry, then queue it
    worker.py   AnalyzerWorker: claims jobs, runs the pipeline, stores reports
    exports.py  what the service reads from an Anchore export (identity and summary)
    metrics.py  the Prometheus objects the worker updates and the API serves
    api/        `layerscan serve`'s HTTP side: Anchore's external API, /metrics, the web page (/ui)

The pipeline does not know the service exists: the worker calls it as one function.
"""
