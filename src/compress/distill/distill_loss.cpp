#include "hone/compress/distill_loss.h"

#include <ATen/ATen.h>

#include "hone/core/error.h"
#include "hone/core/format.h"

namespace hone::compress {
namespace {

/// Half and bf16 outputs are lifted to fp32 for the loss; fp32 and fp64 stay as they are.
at::Tensor upcast(const at::Tensor& x) {
  return x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16 ? x.to(at::kFloat) : x;
}

}  // namespace

at::Tensor teacher_probabilities(const std::vector<at::Tensor>& teacher_logits, const std::vector<double>& weights,
                                 double temperature) {
  HONE_CHECK(!teacher_logits.empty(), "distillation: no teacher outputs");
  HONE_CHECK(weights.size() == teacher_logits.size(), "distillation: {} teacher weights for {} teachers",
             weights.size(), teacher_logits.size());
  HONE_CHECK(temperature > 0, "distillation: the temperature must be > 0, got {}", temperature);
  double total = 0;
  for (const double w : weights) {
    HONE_CHECK(w >= 0, "distillation: teacher weights must be >= 0, got {}", w);
    total += w;
  }
  HONE_CHECK(total > 0, "distillation: the teacher weights sum to 0");
  at::Tensor sum;
  for (std::size_t i = 0; i < teacher_logits.size(); ++i) {
    const at::Tensor& logits = teacher_logits[i];
    HONE_CHECK(logits.dim() == 2 && logits.sizes() == teacher_logits.front().sizes(),
               "distillation: teacher {} outputs {} where the first outputs {}", i, logits.sizes(),
               teacher_logits.front().sizes());
    const at::Tensor p = at::softmax(upcast(logits) / temperature, 1) * (weights[i] / total);
    sum = sum.defined() ? sum + p : p;
  }
  return sum;
}

at::Tensor soft_target_loss(const at::Tensor& student_logits, const at::Tensor& teacher_probs, double temperature) {
  HONE_CHECK(student_logits.sizes() == teacher_probs.sizes(),
             "distillation: the student outputs {} but the teacher's soft targets are {}", student_logits.sizes(),
             teacher_probs.sizes());
  const at::Tensor log_student = at::log_softmax(upcast(student_logits) / temperature, 1);
  // Σ p·(log p − log q), with 0·log 0 = 0 (xlogy), summed over classes and averaged over rows.
  const at::Tensor kl = (at::xlogy(teacher_probs, teacher_probs) - teacher_probs * log_student).sum(1).mean();
  return kl * (temperature * temperature);
}

at::Tensor distillation_loss(const at::Tensor& student_logits, const at::Tensor& teacher_probs,
                             const at::Tensor& labels, double temperature, double alpha) {
  HONE_CHECK(alpha >= 0 && alpha <= 1, "distillation: alpha must be in [0, 1], got {}", alpha);
  at::Tensor loss = soft_target_loss(student_logits, teacher_probs, temperature) * alpha;
  if (alpha < 1) loss = loss + at::cross_entropy_loss(upcast(student_logits), labels) * (1 - alpha);
  return loss;
}

at::Tensor regression_distillation_loss(const at::Tensor& student, const at::Tensor& teacher, const at::Tensor& target,
                                        double alpha) {
  HONE_CHECK(alpha >= 0 && alpha <= 1, "distillation: alpha must be in [0, 1], got {}", alpha);
  HONE_CHECK(student.sizes() == teacher.sizes() && student.sizes() == target.sizes(),
             "distillation: student {}, teacher {} and target {} must have one shape", student.sizes(), teacher.sizes(),
             target.sizes());
  const at::Tensor s = upcast(student);
  return at::mse_loss(s, teacher.to(s.scalar_type())) * alpha +
         at::mse_loss(s, target.to(s.scalar_type())) * (1 - alpha);
}

}  // namespace hone::compress
