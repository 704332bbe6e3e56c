#!/usr/bin/env Rscript
# Generates mannwhitney_reference.json, the reference table that
# judge/stats_test.go checks the Go implementation against.
#
# Usage (from the repository root):
#   Rscript judge/testdata/gen_reference.R > judge/testdata/mannwhitney_reference.json
#
# Needs only base R (package stats). See README.md in this folder.

options(warn = 1)

conf_level <- 0.98 # the judge's default confidence
tolerance <- 0.25  # half-width of the band around zero, as a share of |shift|

# ---------------------------------------------------------------- JSON output
num <- function(v) {
  if (is.null(v) || length(v) == 0 || is.na(v)) return("null")
  if (is.infinite(v)) stop("infinite value cannot be written to JSON")
  sprintf("%.17g", v)
}
nums <- function(v) paste0("[", paste(vapply(v, num, ""), collapse = ","), "]")
str <- function(s) if (is.null(s)) "null" else paste0('"', gsub('"', '\\\\"', s), '"')
bool <- function(b) if (isTRUE(b)) "true" else "false"
obj <- function(...) {
  kv <- list(...)
  paste0("{", paste(sprintf('"%s":%s', names(kv), unlist(kv)), collapse = ","), "}")
}

# ----------------------------------------------------------------- the cases
set.seed(20261101)
mk <- function(name, canary, baseline, direction = "either", allowed_increase = NULL,
               allowed_decrease = NULL, critical_increase = NULL, critical_decrease = NULL,
               critical = FALSE, missing = "nodata", measure = "meanRatio", expect = NULL) {
  list(name = name, canary = canary, baseline = baseline, direction = direction,
       allowed_increase = allowed_increase, allowed_decrease = allowed_decrease,
       critical_increase = critical_increase, critical_decrease = critical_decrease,
       critical = critical, missing = missing, measure = measure, expect = expect)
}

# Hollander & Wolfe (1973), p. 69: the example data of R's ?wilcox.test.
hw_x <- c(1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30)
hw_y <- c(0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29)

# 60 points each: a 15 minute window at a 15 second step.
base60 <- rnorm(60, mean = 100, sd = 10)
same60 <- rnorm(60, mean = 100, sd = 10)
high60 <- rnorm(60, mean = 130, sd = 10)
low60 <- rnorm(60, mean = 70, sd = 10)
counts_base <- round(rnorm(60, mean = 5, sd = 2))
counts_high <- round(rnorm(60, mean = 7, sd = 2))
errors_canary <- c(rpois(45, 3) + 1, rep(0, 15))
small_base <- rnorm(60, mean = 1e-6, sd = 2e-7)
small_high <- rnorm(60, mean = 2e-6, sd = 2e-7)
around0_base <- rnorm(60, mean = 0, sd = 1)
around0_low <- rnorm(60, mean = -0.8, sd = 1)
lat_base <- rlnorm(150, meanlog = log(0.2), sdlog = 0.5)
lat_canary <- rlnorm(200, meanlog = log(0.21), sdlog = 0.5)
with_nan <- c(base60[1:20], NaN, NA, base60[21:30])
# Heavy ties on one side only. The seed is one for which the lower bound
# depends on the tie correction of the variance: without it the bound would
# be a different pairwise difference.
set.seed(7)
levels_canary <- sample(0:3, 20, replace = TRUE) + 0.5
spread_base <- runif(20, min = 0, max = 3)

cases <- list(
  mk("hollander_wolfe", hw_x, hw_y, expect = "pass"),
  mk("small_ties", c(1, 2, 2, 3, 3, 3, 4), c(2, 3, 3, 4, 4, 5)),
  mk("all_equal", rep(7, 5), rep(7, 8), expect = "pass"),
  mk("canary_empty", numeric(0), c(1, 2, 3), expect = "nodata"),
  mk("baseline_empty_fail", c(1, 2, 3), numeric(0), missing = "fail", expect = "nodata"),
  mk("baseline_empty_pass", c(1, 2, 3), numeric(0), missing = "pass", expect = "pass"),
  mk("empty_critical", numeric(0), numeric(0), critical = TRUE, expect = "nodata"),
  mk("canary_all_nan", c(NaN, NaN), c(1, 2), expect = "nodata"),
  mk("nan_dropped", with_nan, same60[1:25], expect = "pass"),
  mk("window60_same", same60, base60, expect = "pass"),
  mk("window60_identical", base60, base60, expect = "pass"),
  mk("window60_permuted", rev(base60), base60, expect = "pass"),
  mk("window60_high", high60, base60, expect = "high"),
  mk("window60_low", low60, base60, expect = "low"),
  mk("window60_high_increase", high60, base60, direction = "increase", expect = "high"),
  mk("window60_high_decrease_only", high60, base60, direction = "decrease", expect = "pass"),
  mk("window60_low_increase_only", low60, base60, direction = "increase", expect = "pass"),
  mk("window60_high_allowed", high60, base60, allowed_increase = 1.5, expect = "pass"),
  mk("window60_low_allowed", low60, base60, allowed_decrease = 0.5, expect = "pass"),
  mk("window60_high_critical", high60, base60, critical = TRUE, critical_increase = 1.2, expect = "high"),
  mk("window60_high_critical_below", high60, base60, critical = TRUE, critical_increase = 1.5, expect = "high"),
  mk("window60_high_cles", high60, base60, measure = "cles", expect = "high"),
  mk("window60_high_cles_allowed", high60, base60, measure = "cles", allowed_increase = 0.99, expect = "pass"),
  mk("counts_ties", counts_high, counts_base, expect = "high"),
  mk("errors_zero_baseline", errors_canary, rep(0, 60), direction = "increase", expect = "high"),
  mk("constant_vs_constant", rep(5, 60), rep(3, 60), expect = "high"),
  mk("tiny_3v3_separated", c(10, 11, 12), c(1, 2, 3), expect = "pass"),
  mk("tiny_5v5_separated", c(10, 11, 12, 13, 14), c(1, 2, 3, 4, 5), expect = "high"),
  mk("one_vs_one", 10, 1, expect = "pass"),
  mk("small_scale_high", small_high, small_base, expect = "high"),
  mk("around_zero_low", around0_low, around0_base, expect = "low"),
  mk("latency_200v150", lat_canary, lat_base),
  mk("ties_canary_only", levels_canary, spread_base)
)

# ------------------------------------------------- the judge's rule, restated
# Kayenta's MannWhitneyClassifier rule (see classify.go), computed here from
# R's own results so that the Go code is checked against an independent
# statement of it.
classify <- function(cs, x, y, test) {
  default_effect <- if (cs$measure == "cles") 0.5 else 1.0
  or_default <- function(v) if (is.null(v)) default_effect else v
  ai <- or_default(cs$allowed_increase); ad <- or_default(cs$allowed_decrease)
  ci_ <- or_default(cs$critical_increase); cd <- or_default(cs$critical_decrease)
  out <- function(class, critical = FALSE, nodata_fails = FALSE)
    list(class = class, critical = critical, nodata_fails = nodata_fails)
  if (length(x) == 0 || length(y) == 0) {
    if (cs$missing == "pass") return(out("pass"))
    return(out("nodata", critical = cs$critical, nodata_fails = cs$missing == "fail"))
  }
  if (length(x) == length(y) && all(sort(x) == sort(y))) return(out("pass"))
  if (length(unique(c(x, y))) == 1) return(out("pass"))
  if (!test$reachable) return(out("pass"))
  bound <- tolerance * abs(test$hl)
  effect <- if (cs$measure == "cles") test$W / (length(x) * length(y)) else test$ratio
  up <- cs$direction %in% c("increase", "either")
  down <- cs$direction %in% c("decrease", "either")
  if (up && test$ci[1] > bound && (is.nan(effect) || effect >= ai)) {
    return(out("high", critical = cs$critical && (is.nan(effect) || effect >= ci_)))
  }
  if (down && test$ci[2] < -bound && (is.nan(effect) || effect <= ad)) {
    return(out("low", critical = cs$critical && (is.nan(effect) || effect <= cd)))
  }
  out("pass")
}

# ------------------------------------------------------------------- compute
run <- function(cs) {
  x <- cs$canary[!is.na(cs$canary)] # is.na is TRUE for NaN too
  y <- cs$baseline[!is.na(cs$baseline)]
  res <- list(error = NULL)
  test <- NULL
  if (length(x) > 0 && length(y) > 0) {
    w <- wilcox.test(x, y, exact = FALSE, correct = TRUE)
    ci_default <- tryCatch(
      wilcox.test(x, y, exact = FALSE, correct = TRUE, conf.int = TRUE,
                  conf.level = conf_level)$conf.int,
      error = function(e) NULL, warning = function(w) NULL)
    ci_fine <- tryCatch(
      wilcox.test(x, y, exact = FALSE, correct = TRUE, conf.int = TRUE,
                  conf.level = conf_level, tol.root = 1e-300)$conf.int,
      error = function(e) NULL, warning = function(w) NULL)
    hl <- median(outer(x, y, "-"))
    mx <- mean(x); my <- mean(y)
    ratio <- if (mx == 0 || my == 0) NaN else mx / my
    test <- list(W = unname(w$statistic), p = w$p.value, hl = hl, ratio = ratio,
                 ci_default = ci_default, ci_fine = ci_fine)
    nx <- length(x); ny <- length(y); N <- nx * ny
    # Within-sample ties only: the spread of the statistic at a shift where
    # no canary value meets a baseline value.
    tx <- table(x); ty <- table(y)
    sigma0 <- sqrt((N / 12) * ((nx + ny + 1) - (sum(tx^3 - tx) + sum(ty^3 - ty)) / ((nx + ny) * (nx + ny - 1))))
    # The largest value the corrected statistic reaches: every pair ordered
    # one way. Below the quantile, no data of these sizes can be significant.
    test$reachable <- (N / 2 - 0.5) / sigma0 > qnorm((1 - conf_level) / 2, lower.tail = FALSE)
    if (!is.null(ci_fine)) {
      test$ci <- as.numeric(ci_fine)
    } else if (length(unique(x)) == 1 && length(unique(y)) == 1) {
      # R stops here: at the only shift there is, every observation is tied.
      # The interval R clamps to, [min(x) - max(y), max(x) - min(y)], is that
      # one shift (see shiftInterval in stats.go).
      test$ci <- c(min(x) - max(y), max(x) - min(y))
      test$ci_rule <- TRUE
    } else {
      stop("no interval for case ", cs$name)
    }
  } else {
    res$error <- "nodata"
  }
  verdict <- classify(cs, x, y, test)
  if (!is.null(cs$expect) && verdict$class != cs$expect) {
    stop(sprintf("case %s: rule gives %s, expected %s", cs$name, verdict$class, cs$expect))
  }
  opt <- function(v) if (is.null(v)) "null" else num(v)
  fields <- list(
    name = str(cs$name),
    canary = nums(cs$canary),
    baseline = nums(cs$baseline),
    options = obj(direction = str(cs$direction), measure = str(cs$measure),
                  missing = str(cs$missing), critical = bool(cs$critical),
                  allowed_increase = opt(cs$allowed_increase),
                  allowed_decrease = opt(cs$allowed_decrease),
                  critical_increase = opt(cs$critical_increase),
                  critical_decrease = opt(cs$critical_decrease)),
    error = if (is.null(res$error)) "null" else str(res$error),
    n_canary = num(length(x)),
    n_baseline = num(length(y))
  )
  if (!is.null(test)) {
    fields <- c(fields, list(
      w = num(test$W),
      p_value = num(test$p),
      hodges_lehmann = num(test$hl),
      mean_ratio = num(test$ratio),
      conf_int_default = if (is.null(test$ci_default)) "null" else nums(as.numeric(test$ci_default)),
      conf_int = nums(test$ci),
      reachable = bool(test$reachable),
      conf_int_from_rule = bool(isTRUE(test$ci_rule))))
  }
  fields <- c(fields, list(
    class = str(verdict$class),
    critical = bool(verdict$critical),
    nodata_fails = bool(verdict$nodata_fails)))
  do.call(obj, fields)
}

rows <- vapply(cases, run, "")

ps <- c(1e-300, 1e-20, 1e-12, 1e-6, 0.001, 0.005, 0.01, 0.025, 0.05, 0.075,
        0.1, 0.16, 0.2, 0.32, 0.4, 0.425, 0.5, 0.64, 0.9, 0.925, 0.99)
qrows <- vapply(ps, function(p) obj(p = num(p), lower = num(qnorm(p)),
                                    upper = num(qnorm(p, lower.tail = FALSE))), "")
zs <- c(-40, -12, -9.44, -5, -2.3263478740408408, -1, -0.1, 0, 0.3, 1.5, 3, 8, 20)
prows <- vapply(zs, function(z) obj(z = num(z), lower = num(pnorm(z)),
                                    upper = num(pnorm(z, lower.tail = FALSE))), "")

cat("{\n")
cat(sprintf('"generator":%s,\n', str("judge/testdata/gen_reference.R")))
cat(sprintf('"r_version":%s,\n', str(R.version.string)))
cat(sprintf('"conf_level":%s,\n', num(conf_level)))
cat(sprintf('"tolerance":%s,\n', num(tolerance)))
cat('"cases":[\n', paste(rows, collapse = ",\n"), "\n],\n", sep = "")
cat('"qnorm":[\n', paste(qrows, collapse = ",\n"), "\n],\n", sep = "")
cat('"pnorm":[\n', paste(prows, collapse = ",\n"), "\n]\n", sep = "")
cat("}\n")
