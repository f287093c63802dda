#!/usr/bin/python3
"""Synapse's tabular models against scikit-learn on scikit-learn's bundled tables, on the same split.

    python3 bench/sklearn_tabular.py --synapse build/src/synapse [--out build/sklearn-tables]
        [--datasets breast_cancer,wine,iris,diabetes] [--seeds 0,1,2,3,4] [--synapse-args "..."] [--markdown FILE]
        [--check accuracy>=0.95] [--match linear:r2]

(scripts/sklearn-tables installs Debian's python3-sklearn when it is missing, builds the command and runs
this.) For each table: export it to CSV (the target as the class names, e.g. malignant / benign), split
it once per seed into NAME-train.csv and NAME-test.csv (80 / 20, stratified for classes), then

  - Synapse: `synapse tabular train NAME-train.csv --target target --test NAME-test.csv` with its
    defaults (it holds out 20% of the training file to choose when to stop, then refits on all of it),
    metrics from RUN/test_metrics.json;
  - scikit-learn: StandardScaler + LogisticRegression (LinearRegression for a regression target) and
    StandardScaler + MLPClassifier / MLPRegressor (defaults, max_iter 2000 so that they converge), both
    fitted on all of NAME-train.csv, read back from the CSV files Synapse reads.

Both are scored on the same NAME-test.csv: accuracy for classes (F1 and ROC AUC too for binary targets),
R2 and RMSE for regression. Prints the means over the seeds' splits as a table (and writes it as
Markdown with --markdown) and which model Synapse's default chose on each split (linear or mlp).
--check METRIC>=VALUE exits 1 when Synapse's metric falls below VALUE on any split of any table;
--match MODEL:METRIC exits 1 when Synapse's metric (higher is better) is below scikit-learn's MODEL
(linear or mlp) on any split, by more than 0.0005 (the float32 rounding of Synapse's weights); the test
suite's checks;
exits 77 when scikit-learn is missing (a skip for CTest).
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import warnings

try:
    import numpy as np
    from sklearn import datasets
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, r2_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except ImportError as e:  # pragma: no cover
    print(f"skipped: scikit-learn is not installed ({e}); scripts/sklearn-tables installs python3-sklearn")
    sys.exit(77)

TABLES = {  # name -> (loader, classification?)
    "breast_cancer": (datasets.load_breast_cancer, True),
    "wine": (datasets.load_wine, True),
    "iris": (datasets.load_iris, True),
    "diabetes": (datasets.load_diabetes, False),
}


def export(name, out, seed):
    load, classes = TABLES[name]
    d = load()
    x = d.data
    y = [str(d.target_names[t]) for t in d.target] if classes else list(d.target)
    header = [str(f) for f in d.feature_names] + ["target"]
    idx = np.arange(len(x))
    tr, te = train_test_split(idx, test_size=0.2, random_state=seed, stratify=y if classes else None)
    paths = {}
    for part, rows in (("train", tr), ("test", te)):
        path = os.path.join(out, f"{name}-{part}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            for i in rows:
                w.writerow([repr(float(v)) for v in x[i]] + [y[i]])
        paths[part] = path
    return paths, classes, x.shape


def read(path, classes):
    with open(path) as f:
        rows = list(csv.reader(f))
    x = np.array([[float(v) for v in r[:-1]] for r in rows[1:]])
    y = [r[-1] for r in rows[1:]]
    return x, (np.array(y) if classes else np.array([float(v) for v in y]))


def score(classes, y, pred, proba=None, labels=None):
    if not classes:
        return {"r2": r2_score(y, pred), "rmse": float(np.sqrt(mean_squared_error(y, pred)))}
    s = {"accuracy": accuracy_score(y, pred)}
    if labels is not None and len(labels) == 2:
        pos = sorted(labels)[1]  # Synapse's positive class: the second in sorted order
        s["f1"] = f1_score(y, pred, pos_label=pos)
        s["auc"] = roc_auc_score(y == pos, proba[:, list(labels).index(pos)])
    return s


def sklearn_models(classes, seed):
    if classes:
        return {"linear": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
                "mlp": make_pipeline(StandardScaler(), MLPClassifier(random_state=seed, max_iter=2000))}
    return {"linear": make_pipeline(StandardScaler(), LinearRegression()),
            "mlp": make_pipeline(StandardScaler(), MLPRegressor(random_state=seed, max_iter=2000))}


def run_once(name, args, seed):
    out = os.path.join(args.out, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    paths, classes, shape = export(name, out, seed)
    run_dir = os.path.join(out, "runs", name)
    cmd = [args.synapse, "tabular", "train", paths["train"], "--target", "target", "--test", paths["test"],
           "--out", run_dir, "--seed", str(seed)] + args.synapse_args.split()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")
    with open(os.path.join(run_dir, "test_metrics.json")) as f:
        metrics = json.load(f)
    syn = metrics["test"]
    syn["model"] = metrics.get("model", "?")
    x_train, y_train = read(paths["train"], classes)
    x_test, y_test = read(paths["test"], classes)
    result = {"name": name, "shape": shape, "classes": classes, "synapse": syn,
              "classes_n": len(set(y_train)) if classes else 0}
    for key, model in sklearn_models(classes, seed).items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(x_train, y_train)
        proba = model.predict_proba(x_test) if classes else None
        labels = model.classes_ if classes else None
        result[key] = score(classes, y_test, model.predict(x_test), proba, labels)
    return result


def run(name, args):
    """The mean of each metric over the seeds (one split per seed)."""
    runs = [run_once(name, args, seed) for seed in args.seeds]
    mean = dict(runs[0])
    for m in ("synapse", "linear", "mlp"):
        mean[m] = {k: float(np.mean([r[m][k] for r in runs])) for k in runs[0][m] if k not in ("rows", "model")}
    mean["per_seed"] = {m: [r[m] for r in runs] for m in ("synapse", "linear", "mlp")}
    return mean


def table(results):
    lines = ["| table | rows × features | task | test metric (mean of the splits) | Synapse | scikit-learn linear | scikit-learn MLP |",
             "| --- | --- | --- | --- | ---: | ---: | ---: |"]
    for r in results:
        rows, feats = r["shape"]
        if r["classes"]:
            task = "binary" if r["classes_n"] == 2 else f"{r['classes_n']} classes"
            metrics = [("accuracy", "accuracy")] + ([("F1", "f1"), ("ROC AUC", "auc")] if r["classes_n"] == 2 else [])
        else:
            task, metrics = "regression", [("R²", "r2"), ("RMSE", "rmse")]
        for i, (label, key) in enumerate(metrics):
            fmt = "{:.2f}" if key == "rmse" else "{:.4f}"
            head = [r["name"], f"{rows} × {feats}", task] if i == 0 else ["", "", ""]
            lines.append("| " + " | ".join(head + [label] + [fmt.format(r[m][key]) for m in ("synapse", "linear", "mlp")]) + " |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--synapse", required=True, help="the synapse command")
    p.add_argument("--out", default="build/sklearn-tables", help="folder for the CSV files and runs")
    p.add_argument("--datasets", default=",".join(TABLES), help="comma-separated: " + ", ".join(TABLES))
    p.add_argument("--seeds", default="0,1,2,3,4", help="one split per seed; the table shows the means")
    p.add_argument("--synapse-args", default="", help="more flags for synapse tabular train (default: none, its defaults)")
    p.add_argument("--markdown", help="also write the table here")
    p.add_argument("--check", help="METRIC>=VALUE: exit 1 when Synapse is below it on a table")
    p.add_argument("--match", help="MODEL:METRIC (e.g. linear:r2): exit 1 when Synapse is below scikit-learn's MODEL on a split")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    args.seeds = [int(v) for v in args.seeds.split(",")]
    names = args.datasets.split(",")
    for n in names:
        if n not in TABLES:
            sys.exit(f"unknown table '{n}'; the tables are: {', '.join(TABLES)}")
    results = [run(n, args) for n in names]
    text = table(results)
    print(text)
    for r in results:
        chosen = [run.get("model", "?") for run in r["per_seed"]["synapse"]]
        print(f"{r['name']}: Synapse's model per split (seeds {','.join(map(str, args.seeds))}): {', '.join(chosen)}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.check:
        metric, value = args.check.split(">=")
        for r in results:
            got = min(run[metric] for run in r["per_seed"]["synapse"])
            print(f"check: {r['name']}: Synapse's lowest test {metric} over the splits {got:.4f} {'>=' if got >= float(value) else '<'} {value}")
            if got < float(value):
                sys.exit(1)
    if args.match:
        model, metric = args.match.split(":")
        worst = 0
        for r in results:
            for seed, syn, other in zip(args.seeds, r["per_seed"]["synapse"], r["per_seed"][model]):
                ok = syn[metric] >= other[metric] - 0.0005
                print(f"match: {r['name']} seed {seed}: Synapse's test {metric} {syn[metric]:.4f} {'>=' if ok else '<'} "
                      f"scikit-learn {model}'s {other[metric]:.4f}{'' if syn[metric] >= other[metric] else ' (within 0.0005)' if ok else ''}")
                worst += not ok
        if worst:
            sys.exit(1)


if __name__ == "__main__":
    main()
