"""Mask R-CNN on generated shapes: train from scratch, detect, write pictures and mAP.

This is kseg's main job (the README's first command):

    python samples/shapes/shapes.py                 # train 3-8 min on 2 CPU cores, evaluate
    python samples/shapes/shapes.py --epochs 2 --steps 20 --val-images 10   # a quick look

Outputs (under --out, default `shapes_out/`):
    metrics.json            mask and box mAP@0.5, COCO AP/AP50/AP75, training time
    overview.png            ground truth beside detections for the first --pictures images
    detections_*.png        detections drawn on validation images
    ground_truth_*.png      the same images with their ground truth
    logs/shapes<time>/      checkpoints (mask_rcnn_shapes_<epoch>.h5), history.csv and
                            config.json, so `kseg evaluate maskrcnn --dataset shapes
                            --weights last --logs shapes_out/logs` reopens the run
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="shapes_out", help="output folder (default: shapes_out)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: config)")
    p.add_argument("--steps", type=int, default=None, help="steps per epoch (default: config)")
    p.add_argument("--train-images", type=int, default=2000, help="generated training images")
    p.add_argument("--val-images", type=int, default=100, help="generated validation images")
    p.add_argument("--pictures", type=int, default=6, help="validation pictures to write")
    p.add_argument("--weights", default="none", help="none|last|PATH to start from")
    p.add_argument("--seed", type=int, default=0, help="data seed")
    return p.parse_args(argv)


def train(config, args, train_set):
    from kseg import MaskRCNN

    model = MaskRCNN("training", config, model_dir=os.path.join(args.out, "logs"))
    if args.weights == "last":
        model.load_weights(model.find_last(), by_name=True)
    elif args.weights != "none":
        model.load_weights(args.weights, by_name=True)
    start = time.time()
    decay_at = max(1, round(config.EPOCHS * 0.8))
    model.train(train_set, None, learning_rate=config.LEARNING_RATE, epochs=decay_at,
                layers="all", verbose=1)
    if config.EPOCHS > decay_at:
        model.train(train_set, None, learning_rate=config.LEARNING_RATE / 10,
                    epochs=config.EPOCHS, layers="all", verbose=1)
    return model, time.time() - start


def evaluate(config, checkpoint, val_set, args):
    """Detect once on every validation image -> (detections by image id, mAP@0.5 result,
    COCO metrics)."""
    from kseg.evaluate import coco_evaluate, evaluate_dataset_map
    from kseg.models.runs import load_inference_model

    # Rebuilt from the run's config.json, as `kseg evaluate` does; batches of BATCH_SIZE.
    model, config, _ = load_inference_model(checkpoint, {"IMAGES_PER_GPU": config.IMAGES_PER_GPU},
                                            kind="maskrcnn")
    ids = list(val_set.image_ids)
    detections = {}
    for start in range(0, len(ids), config.BATCH_SIZE):
        chunk = ids[start:start + config.BATCH_SIZE]
        for image_id, det in zip(chunk, model.detect([val_set.load_image(i) for i in chunk])):
            detections[image_id] = det
    cached = iter(detections[i] for i in ids)
    result = evaluate_dataset_map(lambda images: [next(cached) for _ in images], val_set, ids,
                                  verbose=0, batch_size=1)
    return detections, result, coco_evaluate(val_set, detections, ids)


def write_pictures(detections, val_set, args):
    """detections_*.png and ground_truth_*.png for the first --pictures validation images
    (`detections`: image id -> detect result, from `evaluate`), and overview.png: ground
    truth beside detections, one row per image."""
    from kseg.data.pipelines.molding import extract_bboxes
    from kseg.visualize import save_comparison_png, save_instances_png

    paths, rows = [], []
    for image_id in list(val_set.image_ids)[:args.pictures]:
        image = val_set.load_image(image_id)
        det = detections[image_id]
        path = os.path.join(args.out, f"detections_{image_id:03d}.png")
        paths.append(save_instances_png(path, image, det, val_set.class_names))
        masks, class_ids = val_set.load_mask(image_id)
        gt = {"rois": extract_bboxes(masks), "class_ids": class_ids, "masks": masks,
              "scores": None}
        save_instances_png(os.path.join(args.out, f"ground_truth_{image_id:03d}.png"), image, gt,
                           val_set.class_names)
        rows.append((image, gt, det))
    if rows:
        paths.insert(0, save_comparison_png(os.path.join(args.out, "overview.png"), rows,
                                            val_set.class_names))
    return paths


def main(argv=None):
    args = parse_args(argv)
    from kseg.data import ShapesDataset
    from kseg.models.mask_rcnn.presets import ShapesConfig
    from kseg.utils.io import atomic_write_text

    overrides = {"STEPS_PER_EPOCH": args.steps} if args.steps else {}
    if args.epochs:
        overrides["EPOCHS"] = args.epochs
    config = ShapesConfig(**overrides)
    size = int(config.IMAGE_MAX_DIM)
    train_set = ShapesDataset(args.train_images, size, size, seed=args.seed * 2 + 1)
    val_set = ShapesDataset(args.val_images, size, size, seed=args.seed * 2 + 2)
    print(f"kseg shapes: {len(train_set)} training and {len(val_set)} validation images, "
          f"{config.EPOCHS} epochs x {config.STEPS_PER_EPOCH} steps, batch {config.BATCH_SIZE}")
    trained, seconds = train(config, args, train_set)
    checkpoint = trained.find_last()
    detections, result, coco = evaluate(ShapesConfig(**overrides), checkpoint, val_set, args)
    pictures = write_pictures(detections, val_set, args)
    metrics = {"mask_map50": result["mask_map50"], "box_map50": result["box_map50"],
               "coco": coco, "train_seconds": round(seconds, 1), "checkpoint": checkpoint,
               "epochs": config.EPOCHS, "steps_per_epoch": config.STEPS_PER_EPOCH,
               "val_images": len(val_set), "pictures": pictures}
    atomic_write_text(os.path.join(args.out, "metrics.json"), json.dumps(metrics, indent=2))
    print(f"\nmask mAP@0.5 = {result['mask_map50']:.3f}   box mAP@0.5 = {result['box_map50']:.3f}"
          f"   COCO mask AP = {coco['segm']['AP']:.3f}   (trained {seconds / 60:.1f} min)")
    print(f"pictures and metrics.json written to {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
