// The reproduction report (Markdown) from judged claims, the inputs and the figures' manifest.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "paper/claims.h"

namespace ulsnet::paper {

// `figures`: the manifest //plots:figures writes (a list of {figure, files, source, kind,
// caption}), with file paths relative to the report; may be empty.
std::string render_report(const std::vector<ClaimResult>& claims, const Inputs& in, const nlohmann::json& figures,
                          const std::string& command);

// The verdict table alone (for the README's generated block).
std::string render_verdict_table(const std::vector<ClaimResult>& claims, const std::string& report_link);

// Replaces the text between "<!-- verdicts:begin -->" and "<!-- verdicts:end -->" in `doc` with
// `table`; throws std::runtime_error when the markers are missing or out of order.
// The report as groff -ms (pandoc's `-t ms -s` output) with every figure put back: pandoc's ms
// writer leaves a line "[IMAGE: name]" for each `![name](...)`; each becomes a centred
// `.PDFPIC <fig_dir>/<name>.pdf 6i` (groff -U -Tpdf embeds it) when `has_pdf(name)`, and stays as
// it is otherwise.
std::string ms_with_figures(const std::string& ms, const std::string& fig_dir,
                            const std::function<bool(const std::string&)>& has_pdf);

std::string replace_generated_block(const std::string& doc, const std::string& table);

}  // namespace ulsnet::paper
