#pragma once
/// @file The losses of knowledge distillation (Hinton et al. 2015), on logits or outputs already
/// on one device. Used by the `distill` and `prune_gradual` passes; public so tests can check them
/// against hand computations and finite differences.
///
///   // soft targets at temperature T, cached once per training sample:
///   at::Tensor p = compress::teacher_probabilities({teacher_logits}, {1.0}, /*T=*/4);
///   at::Tensor loss = compress::distillation_loss(student_logits, p, labels, /*T=*/4, /*alpha=*/0.9);
#include <ATen/core/Tensor.h>

#include <vector>

namespace hone::compress {

/// softmax(teacher_i / T) averaged with `weights` (normalized to sum 1): the soft targets of one
/// or several teachers. Logits [N, C] each, same shape; weights >= 0, not all 0.
at::Tensor teacher_probabilities(const std::vector<at::Tensor>& teacher_logits, const std::vector<double>& weights,
                                 double temperature);

/// KL(p_teacher ‖ softmax(student / T)) · T², averaged over the batch: the soft-target loss. T² keeps
/// its gradient's scale independent of T. `teacher_probs` [N, C] rows sum to 1.
at::Tensor soft_target_loss(const at::Tensor& student_logits, const at::Tensor& teacher_probs, double temperature);

/// alpha · soft_target_loss + (1 − alpha) · cross_entropy(student, labels).
at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_probs,
                             const at::Tensor& labels, double temperature, double alpha);

/// The regression variant (forecasters): alpha · MSE(student, teacher) + (1 − alpha) · MSE(student, target).
at::Tensor regression_distillation_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& target,
                                        double alpha);

}  // namespace hone::compress
