"""--engine ray: Ray Data actors extract, the driver writes the same store."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.catalog import CatalogStore, build_catalog, validate_catalog

ray = pytest.importorskip("ray")


@pytest.fixture
def local_ray():
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_build_matches_a_local_build(shapes_dir, tmp_path, local_ray):
    settings = {"imgsz": 64, "conf": 0.0, "max_det": 3}
    local_db, ray_db = tmp_path / "local.db", tmp_path / "ray.db"
    model = "yolo:yolov8n-seg.yaml"
    build_catalog(shapes_dir, model, local_db, batch=4, progress=False, **settings)
    report = build_catalog(
        shapes_dir, model, ray_db, batch=4, engine="ray", progress=False, **settings
    )
    assert (report.engine, report.processed, report.failures) == ("ray", 12, 0)
    assert ray.is_initialized()  # a runtime the caller started is left running
    query = (
        "SELECT i.path, e.dim, l.box, l.cls, m.n_predictions FROM embeddings e JOIN images i "
        "ON i.id = e.image_id JOIN losses l ON l.image_id = e.image_id JOIN metrics m "
        "ON m.image_id = e.image_id ORDER BY i.path"
    )
    local_rows, ray_rows = CatalogStore(local_db).query(query), CatalogStore(ray_db).query(query)
    assert [row[:2] for row in ray_rows] == [row[:2] for row in local_rows]
    np.testing.assert_allclose(
        [row[2:] for row in ray_rows], [row[2:] for row in local_rows], rtol=1e-4, atol=1e-6
    )
    assert validate_catalog(ray_db).ok
    again = build_catalog(shapes_dir, model, ray_db, engine="ray", progress=False, **settings)
    assert (again.processed, again.already_done) == (0, 12)
