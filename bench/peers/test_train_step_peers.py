#!/usr/bin/env python3
"""Tests of train_step_peers.py's hone side and arithmetic, without hone and without timing anything:
hone's `bench --train --json` parsed from a hand-written sample, medians over repeats, the hone/peer
ratio and when it is withheld, the table, and the command line given to a stand-in hone binary.

    python bench/peers/test_train_step_peers.py        (exits non-zero if a test fails)
"""

from __future__ import annotations

import argparse
import json
import stat
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_step_peers as tsp  # noqa: E402

CNN_PARAMETERS = 308_074


def hone_sample(p50s: dict[int, float], precision: str = "fp32", **fields) -> dict:
    """What the C++ side prints for `hone bench cnn --train --json`, with the given p50 per batch."""
    results = [{"batch": batch, "step_ms": {"p50": p50, "p90": p50 * 1.1, "p99": p50 * 1.2, "mean": p50 * 1.05,
                                            "min": p50 * 0.9, "max": p50 * 1.3, "count": 50, "stddev": 0.1},
                "samples_per_second": batch / (p50 * 1.05 / 1e3), "peak_memory_bytes": -1}
               for batch, p50 in p50s.items()]
    return {"schema": "hone-bench-train/1", "target": "cnn", "architecture": "ResNetCnn", "device": "cpu",
            "precision": precision, "optimizer": "adamw (fused)", "checkpoint_activations": False,
            "cuda_graphs": False, "parameters": CNN_PARAMETERS, "input_kind": "random normal (timing only)",
            "results": results} | fields


def peer_run(p50: float) -> dict:
    return tsp.summarize([p50 * 0.9, p50, p50 * 1.2]) | {"peak_memory_bytes": -1}


def make_args(**overrides) -> argparse.Namespace:
    args = argparse.Namespace(torch_device=torch.device("cpu"), device="cpu", peers=["eager-fp32", "compile-fp32"],
                              batches=[8, 128], batch="8,128", hone_variants=["hone"], seq_len=128, warmup=2,
                              iterations=5, threads=1)
    return argparse.Namespace(**(vars(args) | overrides))


class ParseHoneReport(unittest.TestCase):
    def test_sample_is_accepted(self):
        report, why = tsp.parse_hone_report(json.dumps(hone_sample({8: 3.0})))
        self.assertEqual(why, "")
        self.assertEqual(report["results"][0]["step_ms"]["p50"], 3.0)

    def test_other_schema_is_refused(self):
        inference = hone_sample({8: 3.0}) | {"schema": "hone-bench/1"}
        report, why = tsp.parse_hone_report(json.dumps(inference))
        self.assertIsNone(report)
        self.assertIn("hone-bench-train/1", why)
        self.assertIn("'hone-bench/1'", why)

    def test_missing_statistics_are_refused(self):
        sample = hone_sample({8: 3.0})
        del sample["results"][0]["step_ms"]["p99"]
        report, why = tsp.parse_hone_report(json.dumps(sample))
        self.assertIsNone(report)
        self.assertIn("step_ms", why)

    def test_text_that_is_not_json_is_refused(self):
        report, why = tsp.parse_hone_report("Usage: hone bench [OPTIONS] model\n")
        self.assertIsNone(report)
        self.assertIn("no JSON", why)


class RatiosAndTable(unittest.TestCase):
    def make_report(self, hone_runs: list[dict]) -> dict:
        report = tsp.new_model_report("cnn", make_args(), Path("hone"))
        report["hone"]["hone"]["fp32"]["runs"] = hone_runs
        for p50 in (20.0, 22.0, 21.0):
            report["peers"]["eager-fp32"]["batches"][8]["runs"].append(peer_run(p50))
        report["peers"]["compile-fp32"]["batches"][8]["runs"].append(peer_run(5.0) | {"first_step_s": 61.5})
        report["peers"]["eager-fp32"]["batches"][128]["runs"].append(peer_run(40.0))
        return report

    def test_ratio_is_median_hone_p50_over_median_peer_p50(self):
        report = self.make_report([hone_sample({8: p50, 128: 30.0}) for p50 in (10.0, 12.0, 11.0)])
        tsp.finish_model(report, "cpu")
        self.assertEqual(report["parameters"], CNN_PARAMETERS)
        self.assertEqual(report["hone"]["hone"]["fp32"]["by_batch"][8]["step_ms"]["p50"], 11.0)
        eager = report["peers"]["eager-fp32"]["batches"]
        self.assertEqual(eager[8]["step_ms"]["p50"], 21.0)
        self.assertAlmostEqual(eager[8]["hone_over_peer"]["hone"], 11.0 / 21.0)
        self.assertAlmostEqual(eager[128]["hone_over_peer"]["hone"], 30.0 / 40.0)
        self.assertAlmostEqual(report["peers"]["compile-fp32"]["batches"][8]["hone_over_peer"]["hone"], 11.0 / 5.0)
        self.assertEqual(report["peers"]["compile-fp32"]["batches"][128]["runs"], [])  # never ran: no row

        table = tsp.model_table(report, ["hone"])
        eager_8 = next(line for line in table if line.split()[:2] == ["8", "eager-fp32"])
        self.assertEqual(eager_8.split()[2], "21.000")
        self.assertEqual(eager_8.split()[-1], "0.52")
        compile_8 = next(line for line in table if line.split()[:2] == ["8", "compile-fp32"])
        self.assertEqual(compile_8.split()[-2:], ["61.5", "2.20"])  # prep s, hone/peer
        hone_8 = next(line for line in table if line.split()[:3] == ["8", "hone", "fp32"])
        self.assertEqual(hone_8.split()[3], "11.000")
        self.assertEqual(hone_8.split()[-1], "-")  # hone has no ratio to itself

    def test_other_work_gets_no_ratio_and_says_why(self):
        for field, value, words in [("precision", "bf16", "precision 'bf16'"),
                                    ("parameters", CNN_PARAMETERS + 1, "308075 parameters"),
                                    ("optimizer", "sgd", "'sgd'"), ("cuda_graphs", True, "cuda_graphs=True")]:
            with self.subTest(field=field):
                report = self.make_report([hone_sample({8: 10.0, 128: 30.0}, **{field: value})])
                tsp.finish_model(report, "cpu")
                self.assertEqual(report["peers"]["eager-fp32"]["batches"][8]["hone_over_peer"], {})
                self.assertIn(words, report["hone"]["hone"]["fp32"]["note"])
                self.assertIn("no ratios", "\n".join(tsp.model_table(report, ["hone"])))

    def test_peer_without_hone_at_its_precision_gets_no_ratio(self):
        args = make_args(torch_device=torch.device("cuda"), device="cuda", peers=["eager-fp32", "eager-bf16"],
                         batches=[8], batch="8")
        report = tsp.new_model_report("cnn", args, Path("hone"))
        self.assertEqual(sorted(report["hone"]["hone"]), ["bf16", "fp32"])
        report["hone"]["hone"]["fp32"]["runs"] = [hone_sample({8: 10.0}, device="cuda:0")]
        report["hone"]["hone"]["bf16"].update(status="failed", note="exit 2")
        report["peers"]["eager-fp32"]["batches"][8]["runs"].append(peer_run(20.0))
        report["peers"]["eager-bf16"]["batches"][8]["runs"].append(peer_run(8.0))
        tsp.finish_model(report, "cuda")
        self.assertAlmostEqual(report["peers"]["eager-fp32"]["batches"][8]["hone_over_peer"]["hone"], 0.5)
        self.assertEqual(report["peers"]["eager-bf16"]["batches"][8]["hone_over_peer"], {})

    def test_skipped_peers_and_variants_say_why(self):
        args = make_args(peers=["eager-fp32", "cuda-graph-bf16"], hone_variants=["hone", "hone-graphs"])
        report = tsp.new_model_report("cnn", args, Path("hone"))
        self.assertEqual(report["peers"]["cuda-graph-bf16"]["status"], "skipped")
        self.assertEqual(report["hone"]["hone-graphs"]["fp32"]["status"], "skipped")
        self.assertEqual(list(report["hone"]["hone"]), ["fp32"])  # no bf16 peer ran, so no hone bf16


class HoneBinary(unittest.TestCase):
    def fake_hone(self, directory: Path, stdout: str) -> Path:
        """A stand-in `hone` that records its arguments and prints `stdout`."""
        path = directory / "hone"
        path.write_text(textwrap.dedent(f"""\
            #!{sys.executable}
            import json, sys
            open({str(directory / 'argv.json')!r}, 'w').write(json.dumps(sys.argv[1:]))
            sys.stdout.write({stdout!r})
            """))
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
        return path

    def test_command_and_parsed_report(self):
        with tempfile.TemporaryDirectory() as temp:
            sample = hone_sample({8: 10.0}, cuda_graphs=True)
            hone = self.fake_hone(Path(temp), json.dumps(sample))
            report, why = tsp.run_hone(hone, "minilm", "hone-graphs", "bf16", make_args())
            argv = json.loads((Path(temp) / "argv.json").read_text())
        self.assertEqual(why, "")
        self.assertEqual(report, sample)
        self.assertEqual(argv[:3], ["bench", "minilm", "--train"])
        for flag, value in [("--precision", "bf16"), ("--batch", "8,128"), ("--threads", "1"), ("--seq-len", "128"),
                            ("--iterations", "5"), ("--warmup", "2"), ("--device", "cpu")]:
            self.assertEqual(argv[argv.index(flag) + 1], value, flag)
        self.assertIn("--cuda-graphs", argv)
        self.assertIn("--json", argv)

    def test_image_model_gets_no_seq_len_and_plain_variant_no_extra_flag(self):
        argv = tsp.hone_command(Path("hone"), "cnn", "hone", "fp32", make_args(threads=0))
        self.assertNotIn("--seq-len", argv)
        self.assertNotIn("--threads", argv)
        self.assertNotIn("--cuda-graphs", argv)
        self.assertIn("--checkpoint-activations", tsp.hone_command(Path("hone"), "cnn", "hone-ckpt", "fp32",
                                                                   make_args()))

    def test_binary_without_train_support_is_skipped_with_reason(self):
        with tempfile.TemporaryDirectory() as temp:
            inference = hone_sample({8: 10.0}) | {"schema": "hone-bench/1"}
            hone = self.fake_hone(Path(temp), json.dumps(inference))
            report, why = tsp.run_hone(hone, "cnn", "hone", "fp32", make_args())
        self.assertIsNone(report)
        self.assertIn("no --train support", why)

    def test_missing_binary_is_none(self):
        self.assertIsNone(tsp.locate_hone("/nonexistent/build/tools/hone/hone"))
        self.assertIsNone(tsp.locate_hone(""))


if __name__ == "__main__":
    unittest.main()
