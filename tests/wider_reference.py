"""A straight, loop-for-loop port of the official WIDER FACE evaluation (per threshold, per prediction).

Slow, and kept only as the reference our vectorised protocol must agree with.
"""

import numpy as np


def _overlaps(boxes, query):
    out = np.zeros((len(boxes), len(query)))
    for k in range(len(query)):
        q_area = (query[k, 2] - query[k, 0] + 1) * (query[k, 3] - query[k, 1] + 1)
        for n in range(len(boxes)):
            iw = min(boxes[n, 2], query[k, 2]) - max(boxes[n, 0], query[k, 0]) + 1
            if iw > 0:
                ih = min(boxes[n, 3], query[k, 3]) - max(boxes[n, 1], query[k, 1]) + 1
                if ih > 0:
                    ua = (boxes[n, 2] - boxes[n, 0] + 1) * (boxes[n, 3] - boxes[n, 1] + 1) + q_area - iw * ih
                    out[n, k] = iw * ih / ua
    return out


def _image_eval(pred, gt, ignore, iou_thresh):
    _pred, _gt = pred.copy(), gt.copy()
    pred_recall = np.zeros(len(_pred))
    recall_list = np.zeros(len(_gt))
    proposal_list = np.ones(len(_pred))
    _pred[:, 2] += _pred[:, 0]
    _pred[:, 3] += _pred[:, 1]
    _gt[:, 2] += _gt[:, 0]
    _gt[:, 3] += _gt[:, 1]
    overlaps = _overlaps(_pred[:, :4], _gt)
    for h in range(len(_pred)):
        max_overlap, max_idx = overlaps[h].max(), overlaps[h].argmax()
        if max_overlap >= iou_thresh:
            if ignore[max_idx] == 0:
                recall_list[max_idx] = -1
                proposal_list[h] = -1
            elif recall_list[max_idx] == 0:
                recall_list[max_idx] = 1
        pred_recall[h] = len(np.where(recall_list == 1)[0])
    return pred_recall, proposal_list


def _img_pr_info(thresh_num, pred_info, proposal_list, pred_recall):
    pr_info = np.zeros((thresh_num, 2))
    for t in range(thresh_num):
        thresh = 1 - (t + 1) / thresh_num
        r_index = np.where(pred_info[:, 4] >= thresh)[0]
        if len(r_index) == 0:
            continue
        r_index = r_index[-1]
        pr_info[t, 0] = len(np.where(proposal_list[: r_index + 1] == 1)[0])
        pr_info[t, 1] = pred_recall[r_index]
    return pr_info


def _voc_ap(rec, prec):
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1])


def reference_ap(predictions, images, setting, iou_thresh=0.5, thresh_num=1000):
    """``predictions``: (event, name) -> (N, 5) with already-normalised scores; ``images``: WiderImage list."""
    pr_curve = np.zeros((thresh_num, 2))
    count_face = 0
    for image in images:
        pred_info = predictions[(image.event, image.name)]
        keep = np.flatnonzero(image.counted[setting]) + 1
        count_face += len(keep)
        if len(image.boxes) == 0 or len(pred_info) == 0:
            continue
        ignore = np.zeros(len(image.boxes))
        if len(keep):
            ignore[keep - 1] = 1
        pred_recall, proposal_list = _image_eval(pred_info, image.boxes, ignore, iou_thresh)
        pr_curve += _img_pr_info(thresh_num, pred_info, proposal_list, pred_recall)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = pr_curve[:, 1] / pr_curve[:, 0]
    precision = np.nan_to_num(precision)
    recall = pr_curve[:, 1] / count_face
    return _voc_ap(recall, precision)
