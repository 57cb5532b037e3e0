// ONNX: arbitrary bytes through hone's protobuf reader (how export reads back and checks what it
// wrote); an accepted model's tensors are checked and it must re-serialize to a fixed point.
#include "fuzz_target.h"
#include "hone/export/onnx_graph.h"
#include "hone/export/onnx_proto.h"

HONE_FUZZ_TARGET(onnx) {
  hone::fuzz::expect_rejection_only([&] {
    const auto model = hone::onnx::parse<hone::onnx::ModelProto>(hone::fuzz::as_view(data, size), "fuzz.onnx");
    const std::string bytes = hone::onnx::serialize(model);
    if (hone::onnx::serialize(hone::onnx::parse<hone::onnx::ModelProto>(bytes, "again.onnx")) != bytes) std::abort();
    for (const auto& tensor : model.graph.initializer)
      hone::fuzz::expect_rejection_only([&] { hone::onnx::check_tensor(tensor); });
  });
  return 0;
}
