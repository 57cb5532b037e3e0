#pragma once
// Internal to src/export: runs the onnxruntime verifier (ort_verify.py, compiled in) in the
// project's Python as a child process.
#include <cstdint>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace hone::onnx::detail {

/// The Python that has onnxruntime: `configured` if set, else $HONE_PYTHON, else the interpreter
/// the build was configured with.
std::string verifier_python(const std::string& configured);

/// Runs ort_verify.py on `model` with the inputs in `inputs` (safetensors, CASE/INPUT names),
/// writing `outputs` (CASE/OUTPUT) and returning its report (checker verdict, fusion report).
/// `scratch` holds the script and the log. Throws hone::Error with the log's tail when the child
/// fails.
nlohmann::json run_verifier(const std::string& python, const std::filesystem::path& scratch,
                            const std::filesystem::path& model, const std::filesystem::path& inputs,
                            const std::filesystem::path& outputs, std::int64_t chunk);

}  // namespace hone::onnx::detail
