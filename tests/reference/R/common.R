# Helpers shared by the reference scripts: paths, data, number formatting, output with a header.
#
# Every output CSV starts with comment lines ("# key: value") recording the engine, the package
# versions and the settings, then the table parsed by tests/reference_data.py:
#   equation,term,coef,se        one row per coefficient
#   _model,<name>,<value>,       one row per scalar (llf, llnull, aic, bic, deviance, nobs, ...)
# Covariance files are long tables: cov_type,equation_row,term_row,equation_col,term_col,value.

script_dir <- function() {
  args <- commandArgs(trailingOnly = FALSE)
  file <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(file) != 1) stop("run with Rscript tests/reference/R/<script>.R")
  normalizePath(dirname(file))
}

REF_DIR <- normalizePath(file.path(script_dir(), ".."))
DATA_DIR <- normalizePath(file.path(REF_DIR, "..", "..", "multilogit", "datasets", "data"))

# Tight convergence: R's defaults (glm epsilon 1e-8, vglm epsilon 1e-7) leave the standard errors
# about 1e-8 relative off, visible at the precision the tests compare.
EPSILON <- 1e-15
MAXIT <- 100L

load_hsbdemo <- function() {
  df <- read.csv(file.path(DATA_DIR, "hsbdemo.csv"), sep = ";", row.names = 1)
  df$prog <- factor(df$prog, levels = c("academic", "general", "vocation"))
  df$ses <- factor(df$ses, levels = c("low", "middle", "high"))
  df
}

load_admissions <- function() {
  df <- read.csv(file.path(DATA_DIR, "admissions.csv"), row.names = 1)
  df$rank <- factor(df$rank, levels = 1:4)
  df
}

fmt <- function(x) sprintf("%.17g", x)

versions <- function(pkgs) {
  paste0(
    R.version.string, "; ",
    paste(sprintf("%s %s", pkgs, sapply(pkgs, function(p) as.character(packageVersion(p)))),
      collapse = ", "
    )
  )
}

# Header lines: a named list or character vector of "key: value".
header_lines <- function(script, info) {
  c(
    sprintf("# produced by: Rscript tests/reference/R/%s (do not edit by hand)", script),
    sprintf("# %s: %s", names(info), unlist(info))
  )
}

# coef, se: matrices with rows = terms (multilogit/patsy names), columns = equations.
write_estimates <- function(name, script, info, coef, se, scalars) {
  rows <- character()
  for (eq in colnames(coef)) {
    for (term in rownames(coef)) {
      rows <- c(rows, paste(eq, term, fmt(coef[term, eq]), fmt(se[term, eq]), sep = ","))
    }
  }
  for (s in names(scalars)) {
    rows <- c(rows, paste("_model", s, fmt(scalars[[s]]), "", sep = ","))
  }
  path <- file.path(REF_DIR, paste0(name, ".csv"))
  writeLines(c(header_lines(script, info), "equation,term,coef,se", rows), path)
  message("wrote ", path)
}

# covs: named list of matrices in multilogit's flat outcome-major order, one per covariance type;
# labels: data.frame(equation, term) naming their rows and columns.
write_covariances <- function(name, script, info, covs, labels) {
  rows <- character()
  for (type in names(covs)) {
    cov <- covs[[type]]
    for (i in seq_len(nrow(cov))) {
      for (j in seq_len(ncol(cov))) {
        rows <- c(rows, paste(type, labels$equation[i], labels$term[i], labels$equation[j],
          labels$term[j], fmt(cov[i, j]),
          sep = ","
        ))
      }
    }
  }
  path <- file.path(REF_DIR, paste0(name, ".csv"))
  head <- "cov_type,equation_row,term_row,equation_col,term_col,value"
  writeLines(c(header_lines(script, info), head, rows), path)
  message("wrote ", path)
}

# Multinomial-logit score rows and information, independent of any fitting package.
# X: n x p design; y: outcome codes 0..J (0 = reference); P: n x J non-reference probabilities.
# Scores in the flat outcome-major order (all terms of outcome 1, then outcome 2, ...).
mnl_scores <- function(X, y, P) {
  J <- ncol(P)
  D <- sapply(seq_len(J), function(j) as.numeric(y == j))
  R <- D - P
  do.call(cbind, lapply(seq_len(J), function(j) R[, j] * X))
}

mnl_information <- function(X, P, f = rep(1, nrow(X))) {
  J <- ncol(P)
  p <- ncol(X)
  H <- matrix(0, J * p, J * p)
  for (j in seq_len(J)) {
    for (k in seq_len(J)) {
      wjk <- f * P[, j] * ((j == k) - P[, k])
      H[(j - 1) * p + seq_len(p), (k - 1) * p + seq_len(p)] <- crossprod(X, wjk * X)
    }
  }
  H
}

# Largest relative difference, for the consistency checks the scripts assert.
max_rel <- function(a, b) max(abs(a - b) / pmax(abs(b), .Machine$double.xmin))

check <- function(ok, what) {
  if (!isTRUE(ok)) stop("check failed: ", what)
  message("ok: ", what)
}
