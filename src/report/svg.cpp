// SVG charts and PNG data URIs for the HTML report.
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "report/html.h"
#include "synapse/report.h"

namespace synapse::report {
namespace {

struct Frame {
  double x0, x1, y0, y1;   // data range
  double left, top, w, h;  // plot area in pixels
  bool log_y;
  double px(double x) const { return left + (x - x0) / (x1 - x0) * w; }
  double py(double y) const {
    if (log_y) return top + h - (std::log10(y) - std::log10(y0)) / (std::log10(y1) - std::log10(y0)) * h;
    return top + h - (y - y0) / (y1 - y0) * h;
  }
};

// Tick labels with as many decimals as the tick spacing needs.
std::string tick_label(double v, double step) {
  if (std::abs(v) < step * 1e-6) v = 0;
  const int decimals = step >= 1 ? 0 : std::min(8, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  return fmt::format("{:.{}f}", v, decimals);
}

std::string num(double v) { return fmt::format("{:.1f}", v); }

// Horizontal grid lines at the y ticks, and the tick labels left of the plot area.
template <class Label> void y_grid_and_ticks(std::string& out, const Frame& f, const std::vector<double>& yt, Label label) {
  out += R"(<g class="grid">)";
  for (double v : yt)
    out += fmt::format(R"(<line x1="{}" x2="{}" y1="{}" y2="{}"/>)", num(f.left), num(f.left + f.w), num(f.py(v)),
                       num(f.py(v)));
  out += "</g><g class=\"axis y-axis\">";
  for (double v : yt)
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", num(f.left - 8), num(f.py(v) + 4), label(v));
}

std::string svg_open(const std::string& cls, const ChartOptions& o) {
  std::string s = fmt::format(
      R"(<svg class="chart {}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">)",
      cls, o.width, o.height, o.width, o.height, html_escape(o.title));
  s += fmt::format(R"(<text class="chart-title" x="{}" y="20">{}</text>)", 12, html_escape(o.title));
  return s;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int count) {
  SYN_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi && count >= 1, "nice_ticks: bad range [{}, {}]", lo, hi);
  if (hi == lo) {
    const double pad = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw * (1 - 1e-9)) break;  // tolerate rounding in (hi - lo) / count
  }
  std::vector<double> t;
  // From the tick at or below lo to the first one at or above hi.
  for (double v = std::floor(lo / step + 1e-9) * step; t.size() < 100; v += step) {
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    if (v >= hi - step * 1e-9) break;
  }
  return t;
}

std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& o) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : series) {
    SYN_CHECK(s.x.size() == s.y.size(), "line_chart_svg: series '{}' has {} x and {} y values", s.name, s.x.size(),
              s.y.size());
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (o.log_y && s.y[i] <= 0)) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  std::string out = svg_open("line-chart", o);
  if (!std::isfinite(x0)) {
    out += fmt::format(R"(<text class="empty" x="{}" y="{}">no data</text></svg>)", o.width / 2, o.height / 2);
    return out;
  }
  Frame f{x0,     x1, y0, y1, 64, 34, static_cast<double>(o.width - 64 - 18), static_cast<double>(o.height - 34 - 48),
          o.log_y};
  // x: whole epochs; a single epoch sits in the middle.
  if (f.x1 == f.x0) {
    f.x0 -= 1;
    f.x1 += 1;
  }
  std::vector<double> xt = nice_ticks(f.x0, f.x1, std::min(8, static_cast<int>(f.x1 - f.x0) + 1));
  if (o.integer_x) {
    std::vector<double> keep;
    for (double v : xt)
      if (std::abs(v - std::round(v)) < 1e-9 && v >= x0 - 1e-9 && v <= x1 + 1e-9) keep.push_back(v);
    xt = keep;
  }
  f.x0 -= (f.x1 - f.x0) * 0.03;
  f.x1 += (f.x1 - f.x0) * 0.03;
  // y: nice ticks spanning the data (decades on a log axis).
  std::vector<double> yt;
  if (o.log_y) {
    double lo = std::floor(std::log10(y0)), hi = std::ceil(std::log10(y1));
    if (hi == lo) hi = lo + 1;
    for (double e = lo; e <= hi; ++e) yt.push_back(std::pow(10.0, e));
  } else {
    yt = nice_ticks(y0, y1, 5);
  }
  if (!yt.empty()) {
    f.y0 = yt[0];
    f.y1 = yt[yt.size() - 1];
  }
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0;
  // Grid and ticks.
  y_grid_and_ticks(out, f, yt, [&](double v) { return o.log_y ? fmt::format("{:g}", v) : tick_label(v, ystep); });
  out += "</g><g class=\"axis x-axis\">";
  for (double v : xt) {
    out += fmt::format(R"(<line x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>)", num(f.px(v)), num(f.top + f.h),
                       num(f.top + f.h + 5));
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="middle">{}</text>)", num(f.px(v)), num(f.top + f.h + 18),
                       fmt::format("{:g}", v));
  }
  out += fmt::format(R"(</g><line class="axis-line" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>)", num(f.left),
                     num(f.left + f.w), num(f.top + f.h));
  out += fmt::format(R"(<line class="axis-line" x1="{0}" x2="{0}" y1="{1}" y2="{2}"/>)", num(f.left), num(f.top),
                     num(f.top + f.h));
  out += fmt::format(R"(<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>)", num(f.left + f.w / 2),
                     o.height - 8, html_escape(o.x_label));
  out += fmt::format(
      R"s(<text class="axis-label" transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>)s",
      num(f.top + f.h / 2), html_escape(o.y_label));
  // Lines, markers with tooltips, legend (top right).
  double legend_x = o.width - 18;
  for (auto it = series.rbegin(); it != series.rend(); ++it) {
    const Series& s = *it;
    std::string pts;
    for (std::size_t i = 0; i < s.x.size(); ++i)
      if (std::isfinite(s.y[i]) && (!o.log_y || s.y[i] > 0))
        pts += fmt::format("{},{} ", num(f.px(s.x[i])), num(f.py(s.y[i])));
    out += fmt::format(
        R"(<g class="series" data-name="{}"><polyline fill="none" stroke="{}" stroke-width="2.2" stroke-linejoin="round"{} points="{}"/>)",
        html_escape(s.name), s.color, s.dashed ? R"( stroke-dasharray="7 5")" : "", pts);
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (o.log_y && s.y[i] <= 0)) continue;
      out += fmt::format(R"(<circle cx="{}" cy="{}" r="3.6" fill="{}"><title>{} · {} {:g}: {:.5g}</title></circle>)",
                         num(f.px(s.x[i])), num(f.py(s.y[i])), s.color, html_escape(s.name), html_escape(o.x_label),
                         s.x[i], s.y[i]);
    }
    out += "</g>";
    const double w = 22 + 7.2 * static_cast<double>(s.name.size());
    legend_x -= w + 10;
    out += fmt::format(
        R"(<g class="legend"><rect x="{}" y="11" width="14" height="4" rx="2" fill="{}"/><text x="{}" y="17">{}</text></g>)",
        num(legend_x), s.color, num(legend_x + 19), html_escape(s.name));
  }
  out += "</svg>";
  return out;
}

std::string bar_chart_svg(const std::vector<std::string>& labels, const std::vector<double>& values,
                          const ChartOptions& o) {
  SYN_CHECK(labels.size() == values.size(), "bar_chart_svg: {} labels for {} values", labels.size(), values.size());
  std::string out = svg_open("bar-chart", o);
  if (values.empty()) return out + "</svg>";
  const double vmax = *std::max_element(values.begin(), values.end());
  const std::vector<double> yt = nice_ticks(0, std::max(vmax, 1.0), 5);
  const bool rotate = std::any_of(labels.begin(), labels.end(), [](const std::string& l) { return l.size() > 3; });
  Frame f{0,
          static_cast<double>(values.size()),
          0,
          yt.empty() ? vmax : yt[yt.size() - 1],
          64,
          34,
          static_cast<double>(o.width - 64 - 18),
          static_cast<double>(o.height - 34 - (rotate ? 78 : 48)),
          false};
  const double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1.0;
  y_grid_and_ticks(out, f, yt, [&](double v) { return tick_label(v, ystep); });
  out += "</g><g class=\"bars\">";
  const double slot = f.w / static_cast<double>(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double x = f.left + slot * static_cast<double>(i) + slot * 0.15, bw = slot * 0.7;
    const double y = f.py(values[i]);
    out +=
        fmt::format(R"(<rect class="bar" x="{}" y="{}" width="{}" height="{}" rx="3"><title>{}: {:g}</title></rect>)",
                    num(x), num(y), num(bw), num(f.top + f.h - y), html_escape(labels[i]), values[i]);
    out += fmt::format(R"(<text class="bar-value" x="{}" y="{}" text-anchor="middle">{:g}</text>)", num(x + bw / 2),
                       num(y - 5), values[i]);
    if (rotate)
      out += fmt::format(
          R"s(<text class="bar-label" transform="translate({} {}) rotate(-35)" text-anchor="end">{}</text>)s",
          num(x + bw / 2 + 4), num(f.top + f.h + 14), html_escape(labels[i]));
    else
      out += fmt::format(R"(<text class="bar-label" x="{}" y="{}" text-anchor="middle">{}</text>)", num(x + bw / 2),
                         num(f.top + f.h + 18), html_escape(labels[i]));
  }
  out += fmt::format(R"(</g><line class="axis-line" x1="{0}" x2="{1}" y1="{2}" y2="{2}"/>)", num(f.left),
                     num(f.left + f.w), num(f.top + f.h));
  out += fmt::format(R"(<text class="axis-label" x="{}" y="{}" text-anchor="middle">{}</text>)", num(f.left + f.w / 2),
                     o.height - 8, html_escape(o.x_label));
  out += fmt::format(
      R"s(<text class="axis-label" transform="translate(14 {}) rotate(-90)" text-anchor="middle">{}</text>)s",
      num(f.top + f.h / 2), html_escape(o.y_label));
  return out + "</svg>";
}

std::string png_data_uri(const unsigned char* pixels, int cols, int rows, int channels) {
  std::string png;
  const int ok = stbi_write_png_to_func(
      [](void* ctx, void* data, int size) {
        static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
      },
      &png, cols, rows, channels, pixels, cols * channels);
  SYN_CHECK(ok != 0, "png_data_uri: cannot encode a {}x{} image", cols, rows);
  return "data:image/png;base64," + base64(png);
}

}  // namespace synapse::report
