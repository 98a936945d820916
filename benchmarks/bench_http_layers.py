"""Where a recommendation's time goes on the HTTP path, in process: CPU per request of the
trivial endpoint, the whole POST /v1/recommendations, the engine alone, and each layer between
(request validation, the response written through marshmallow against orjson).

    python benchmarks/bench_http_layers.py                    # 100k customers, 2,000 businesses
    python benchmarks/bench_http_layers.py --quick            # CI smoke test

Flask's test client drives the app (no sockets: bench_http.py measures the server); CPU time
of the process, so the figures hold on a shared machine better than wall time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

MOMENTS = [{"moment": "query"},
           {"moment": "transaction", "product": "plan_5g"},
           {"moment": "success", "product": "intl_roaming"},
           {"moment": "failure", "product": "plan_5g_newsim", "failure_reason": "not_eligible"}]


def cpu_ms(step: Callable[[int], object], n: int) -> float:
    """CPU milliseconds per call of ``step(i)``, over ``n`` calls after ``n // 10`` warm-up."""
    for i in range(n // 10):
        step(i)
    started = time.process_time()
    for i in range(n):
        step(i)
    return (time.process_time() - started) / n * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/recommender-bench"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.customers, args.products, args.requests = 2000, 100, 200
    from scale import build_operator

    root = args.work / f"op-{args.customers}-{args.products}"
    build_operator(root, customers=args.customers, products=args.products,
                   log=lambda m: print(m, file=sys.stderr))

    import orjson

    from api import create_app
    from api.schemas import RecommendationRequestSchema, RecommendationSchema
    from recommender import RecommendationRequest

    app = create_app(root)
    client = app.test_client()
    engine = app.extensions["recommender"].slot.engine
    ids = [r[0] for r in engine.store.db.execute(
        "SELECT id FROM customers ORDER BY random() LIMIT ?", (args.requests,))]
    bodies = [{"customer": {"id": c}, "channel": "app", **MOMENTS[i % 4]}
              for i, c in enumerate(ids)]
    requests = [RecommendationRequest(b["customer"]["id"], "app", b["moment"],
                                      product=b.get("product"),
                                      failure_reason=b.get("failure_reason")) for b in bodies]
    answers = [engine.recommend(r).to_dict() for r in requests]
    request_schema, response_schema = RecommendationRequestSchema(), RecommendationSchema()
    n = len(bodies)

    rows = [
        ("GET /healthz (the trivial endpoint)", cpu_ms(lambda i: client.get("/healthz"), n)),
        ("POST /v1/recommendations (all of it)",
         cpu_ms(lambda i: client.post("/v1/recommendations", json=bodies[i % n]), n)),
        ("engine.recommend + to_dict", cpu_ms(lambda i: engine.recommend(requests[i % n])
                                              .to_dict(), n)),
        ("  of which the TCPC context (three store reads)",
         cpu_ms(lambda i: engine.build_context(requests[i % n]), n)),
        ("request validation (marshmallow load)",
         cpu_ms(lambda i: request_schema.load(bodies[i % n]), n)),
        ("response through marshmallow dump + json",
         cpu_ms(lambda i: json.dumps(response_schema.dump(answers[i % n]),
                                     ensure_ascii=False), n)),
        ("response written by orjson (served)", cpu_ms(lambda i: orjson.dumps(answers[i % n]), n)),
    ]
    app.extensions["recommender"].slot.close()
    print(f"CPU ms per request, in process (Flask test client); {args.customers:,} customers x "
          f"{args.products:,} businesses; {n} requests over the four moments")
    for name, ms in rows:
        print(f"{name:42} {ms:8.3f}")
    http, total, engine_ms = rows[0][1], rows[1][1], rows[2][1]
    print(f"HTTP layers around the engine: {total - engine_ms - http:.3f} ms beyond the trivial "
          f"endpoint's {http:.3f} ms; trivial / recommendation CPU: {http / total:.1%}")
    print(f"at 70% of the trivial endpoint, a recommendation could cost {http / 0.7:.3f} ms of CPU "
          f"in all, {http / 0.7 - http:.3f} ms beyond the trivial endpoint; it costs "
          f"{total - http:.3f} beyond it")
    if args.json:
        args.json.write_text(json.dumps({name: ms for name, ms in rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
