// A point's summary over its repetitions, as the namespace hosts' result file records it: the
// delivered rate's median, spread and 95% confidence interval, the datagrams and drops summed,
// the merged delay histogram's percentiles, the delay variation and CPU-per-packet medians, and
// the labels of what ran (generator, sink, the proxy's own report). Pure: JSON in, JSON out.
#pragma once

#include <nlohmann/json.hpp>

namespace ulsnet {

// `res` with its summary fields added from res["samples"] (each an accounted trial or an
// error), and "labels": `base_labels` and what the samples report; "error" if one erred.
nlohmann::json summarize_point(nlohmann::json res, const nlohmann::json& base_labels);

}  // namespace ulsnet
