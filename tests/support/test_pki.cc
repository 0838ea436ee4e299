#include "support/test_pki.h"

#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

// Set by tests/CMakeLists.txt: Debian's interpreter (as for the e2e tests) and the script.
#ifndef SLUICE_TEST_PYTHON
#error "SLUICE_TEST_PYTHON is not defined (tests/CMakeLists.txt sets it)"
#endif
#ifndef SLUICE_TEST_PKI_SCRIPT
#error "SLUICE_TEST_PKI_SCRIPT is not defined (tests/CMakeLists.txt sets it)"
#endif

namespace sluice::testing {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs pki.py with `args` (paths without single quotes, which mkdtemp never makes); returns its
// stdout, or records a failure with its stderr and returns nothing.
std::optional<std::string> run_pki_script(const std::string& dir, const std::string& args) {
  const std::string err_path = dir + "/pki.stderr";
  const std::string cmd = std::string("'") + SLUICE_TEST_PYTHON + "' '" + SLUICE_TEST_PKI_SCRIPT +
                          "' " + args + " 2>'" + err_path + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "test PKI: cannot run " << cmd;
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  if (status != 0) {
    ADD_FAILURE() << "test PKI: `" << cmd << "` failed (status " << status
                  << "): " << read_file(err_path);
    return std::nullopt;
  }
  return out;
}

std::optional<nlohmann::json> parse_object(const std::string& text) {
  auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    ADD_FAILURE() << "test PKI: pki.py printed no JSON object: " << text;
    return std::nullopt;
  }
  return json;
}

}  // namespace

std::unique_ptr<TestPki> TestPki::create() {
  std::string templ = (std::filesystem::temp_directory_path() / "sluice-pki-XXXXXX").string();
  if (mkdtemp(templ.data()) == nullptr) {
    ADD_FAILURE() << "test PKI: mkdtemp failed";
    return nullptr;
  }
  std::unique_ptr<TestPki> pki(new TestPki());
  pki->dir_ = templ;
  auto out = run_pki_script(pki->dir_, "'" + pki->dir_ + "'");
  if (!out) return nullptr;
  auto json = parse_object(*out);
  if (!json) return nullptr;
  for (const auto& [name, value] : json->items()) {
    if (value.is_string()) pki->paths_[name] = value.get<std::string>();
  }
  return pki;
}

TestPki::~TestPki() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

const std::string& TestPki::path(const std::string& name) const {
  static const std::string kNone;
  auto it = paths_.find(name);
  if (it == paths_.end()) {
    ADD_FAILURE() << "test PKI: no artefact named " << name << " (see tests/e2e/pki.py)";
    return kNone;
  }
  return it->second;
}

std::optional<CertAndKey> TestPki::reissue(const std::string& name, const std::string& stem) const {
  auto out = run_pki_script(dir_, "'" + dir_ + "' --reissue '" + name + "' '" + stem + "'");
  if (!out) return std::nullopt;
  auto json = parse_object(*out);
  if (!json || !json->contains("cert") || !json->contains("key")) return std::nullopt;
  return CertAndKey{(*json)["cert"].get<std::string>(), (*json)["key"].get<std::string>()};
}

}  // namespace sluice::testing
