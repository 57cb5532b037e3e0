// render_report_main REPORT.json PAGE.html: the page of an optimize report, for the headless
// browser test (tests/optimize/report_page_test.py). Written to a temporary file, then renamed.
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "hone/optimize/report_html.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: " << argv[0] << " REPORT.json PAGE.html\n";
    return 2;
  }
  const std::string report_path = argv[1], page_path = argv[2];
  try {
    std::ifstream in(report_path);
    if (!in) throw std::runtime_error("cannot open " + report_path);
    const nlohmann::json report = nlohmann::json::parse(in);
    const std::string page = hone::optimize::render_report_html(report);
    const std::string temporary = page_path + ".tmp";
    {
      std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
      out << page;
      out.close();
      if (!out) throw std::runtime_error("cannot write " + temporary);
    }
    if (std::rename(temporary.c_str(), page_path.c_str()) != 0) {
      std::remove(temporary.c_str());
      throw std::runtime_error("cannot rename " + temporary + " to " + page_path);
    }
  } catch (const std::exception& error) {
    std::cerr << "render_report_main: " << report_path << ": " << error.what() << "\n";
    return 1;
  }
  return 0;
}
