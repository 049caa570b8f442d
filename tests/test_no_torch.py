"""The edge packages and commands must work where torch is not installed."""

import subprocess
import sys
import textwrap

# A meta path finder that makes `import torch` fail as it would on an edge box without torch.
BLOCK_TORCH = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch' (blocked by the test)")
            return None

    sys.meta_path.insert(0, _NoTorch())
    """
)


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_blocker_really_blocks_torch():
    # Guards the test itself: if the blocker stopped working, the tests below would prove nothing.
    result = run_without_torch("import torch")
    assert result.returncode != 0
    assert "blocked by the test" in result.stderr


def test_edge_packages_import_without_torch():
    result = run_without_torch(
        """
        import pkgutil, importlib
        from edgepipe import postprocess, runtime
        import edgepipe.apps.cli
        for pkg in (postprocess, runtime):
            for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                importlib.import_module(m.name)
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_help_and_edge_commands_without_torch():
    result = run_without_torch(
        """
        from edgepipe.apps.cli import main, COMMANDS
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0
        # train, export, eval and gradcheck need torch to run, not to parse: their defaults come from
        # edgepipe.export.options
        for name in ("detect", "kiosk", "face", "info", "bench", "quantize", "train", "export", "eval", "gradcheck"):
            if name in COMMANDS:
                try:
                    main([name, "--help"])
                except SystemExit as exc:
                    assert exc.code == 0, name
        assert "torch" not in sys.modules
        """
    )
    assert result.returncode == 0, result.stderr
    assert "usage: edgepipe" in result.stdout


def test_detect_runs_without_torch(tmp_path):
    result = run_without_torch(
        f"""
        import cv2, numpy as np, pkgutil, importlib
        from edgepipe import apps
        for m in pkgutil.walk_packages(apps.__path__, "edgepipe.apps."):
            if not m.name.endswith(".__main__"):
                importlib.import_module(m.name)
        from edgepipe.apps.cli import main
        image = np.full((240, 320, 3), 90, np.uint8)
        cv2.circle(image, (160, 120), 60, (40, 200, 230), -1)
        cv2.imwrite("{tmp_path}/frame.png", image)
        code = main(["detect", "--model", "tests/assets/yolo-small.onnx", "--source", "{tmp_path}/frame.png",
                     "--provider", "cpu", "--no-show", "--jsonl", "{tmp_path}/out.jsonl"])
        assert code == 0 and "torch" not in sys.modules
        print(open("{tmp_path}/out.jsonl").read())
        """
    )
    assert result.returncode == 0, result.stderr
    assert '"frame": 0' in result.stdout


def test_face_enroll_and_identify_run_without_torch(tmp_path):
    import cv2

    from edgepipe.export.data.faces import identity_splits
    from edgepipe.export.data.kiosk import enrollment_images

    photos = []  # made here, with torch allowed: the edge box only runs the command
    for i, image in enumerate(enrollment_images(identity_splits()["test"].faces[:1], 3, seed=7)):
        photos.append(str(tmp_path / f"alice{i}.png"))
        cv2.imwrite(photos[-1], image)
    result = run_without_torch(
        f"""
        import contextlib, io, json
        from edgepipe.apps.cli import main

        def face(*argv):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                code = main(["face", *argv, "--json", "--gallery", "{tmp_path}/faces.db", "--conf", "0.25",
                             "--detector", "tests/assets/yolo-face.onnx", "--encoder", "tests/assets/facenet.onnx",
                             "--detector-provider", "cpu", "--encoder-provider", "cpu"])
            return code, json.loads(out.getvalue())

        code, enrolled = face("enroll", "--name", "Alice", "--images", *{photos!r})
        assert code in (0, 2) and enrolled["enrolled"], enrolled  # 2: the small test detector missed a photo
        code, found = face("identify", "--image", enrolled["enrolled"][0], "--threshold", "0.01")
        assert code == 0 and found["name"] == "Alice", found
        code, verdict = face("verify", "--name", "Alice", "--image", enrolled["enrolled"][0], "--siamese",
                             "tests/assets/siamese-head.onnx")  # the Siamese head runs on onnxruntime alone
        assert code == 0 and verdict["match"] and verdict["probability"] > 0.5, verdict
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_face_samples_run_without_torch(tmp_path):
    result = run_without_torch(
        f"""
        from edgepipe.apps.cli import main

        code = main(["face", "samples", "{tmp_path}/s", "--people", "1", "--photos", "1", "--unknown", "0",
                     "--calibration-people", "2", "--no-video", "--quiet"])
        assert code == 0, code
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok") and len(list((tmp_path / "s").rglob("*.jpg"))) == 1 + 1 + 2 * 4


def test_quantize_runs_without_torch(tmp_path):
    import cv2
    import numpy as np
    import onnx

    from edgepipe.export.data.detection import render_scene
    from tests.onnx_graphs import course_as_yolov8, save

    model = save(course_as_yolov8(onnx.load("tests/assets/yolo-small.onnx"), ["circle", "square", "triangle"], 160),
                 tmp_path / "v8.onnx")  # made here, with torch allowed: the edge box only runs the command
    rng = np.random.default_rng(3)
    for i in range(12):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), render_scene(rng).image)
    result = run_without_torch(
        f"""
        from edgepipe.apps.cli import main
        code = main(["quantize", "{model}", "--calib", "{tmp_path}/*.png", "--holdout", "4", "--min-agreement", "0",
                     "--bench-runs", "2", "--quiet"])
        assert code == 0 and "torch" not in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok") and (tmp_path / "v8.int8.onnx").is_file()


def test_models_lists_the_zoo_without_torch():
    result = run_without_torch(
        """
        import contextlib, io, json
        from edgepipe.apps.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert main(["models", "--json"]) == 0
        rows = {r["name"]: r["params"] for r in json.loads(out.getvalue())}
        from edgepipe.export.zoo import ZOO

        assert rows["vgg16"] == 138_357_544 and len(rows) == len(ZOO), rows
        assert "torch" not in sys.modules
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
