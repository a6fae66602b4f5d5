# Predictive margins after a multinomial logit (Stata's `margins ses`, `margins, at(write = (30
# 50 70))`, `over()`, `margins r.ses`, `pwcompare` and the joint test of equal margins), computed
# from first principles: the average over the estimation rows of the probabilities with the
# variable set, and delta-method standard errors from the Jacobian of that average with respect
# to the coefficients by numDeriv's Richardson extrapolation (not an analytic formula) and
# vcov of a tightly converged VGAM::vglm fit.
#
#   Rscript tests/reference/R/margins.R
#
# model: prog ~ ses + write on hsbdemo, reference academic (as hsbdemo.R); weighted cases use
# the frequency weights w = 1 + id %% 3 of hsbdemo.R.

suppressPackageStartupMessages({
  library(VGAM)
  library(numDeriv)
})
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "margins.R"
df <- load_hsbdemo()
df$w <- 1 + df$id %% 3
OUTCOMES <- c("academic", "general", "vocation") # level order, reference first
CONTROL <- vglm.control(
  epsilon = EPSILON, maxit = MAXIT, criterion = "coefficients", half.stepsizing = FALSE
)

fit_model <- function(weights) {
  fam <- multinomial(refLevel = "academic")
  df$.w <- weights
  first <- vglm(prog ~ ses + write, fam, data = df, weights = .w, control = CONTROL)
  fit <- vglm(prog ~ ses + write, fam,
    data = df, weights = .w, control = CONTROL,
    coefstart = coef(first)
  )
  X <- model.matrix(~ ses + write, df)
  ord <- as.vector(sapply(1:2, function(j) paste0(colnames(X), ":", j))) # outcome-major
  list(beta = coef(fit)[ord], V = unname(vcov(fit)[ord, ord]), p = ncol(X))
}

# Probabilities (n x 3, level order) of the rows of `data` at flat coefficients `beta`.
probs <- function(beta, data, p) {
  X <- model.matrix(~ ses + write, data)
  B <- matrix(beta, p)
  eta <- cbind(0, X %*% B)
  P <- exp(eta - apply(eta, 1, max))
  P / rowSums(P)
}

# Margins: for each scenario (a function changing the data) and group (a logical row mask),
# the weighted average probability of each outcome; flat outcome-major over (scenario, group).
margins_fn <- function(scenarios, groups, weights, p) {
  function(beta) {
    out <- array(0, c(3, length(scenarios), length(groups)))
    for (s in seq_along(scenarios)) {
      P <- probs(beta, scenarios[[s]](df), p)
      for (g in seq_along(groups)) {
        m <- groups[[g]]
        out[, s, g] <- colSums(weights[m] * P[m, , drop = FALSE]) / sum(weights[m])
      }
    }
    as.vector(aperm(out, c(3, 2, 1))) # outcome slowest, then scenario, then group
  }
}

# force(): each closure keeps its own value (mapply hands promises).
set_ses <- function(level) {
  force(level)
  function(d) { d$ses <- factor(level, levels(df$ses)); d }
}
set_write <- function(v) {
  force(v)
  function(d) { d$write <- v; d }
}
set_both <- function(level, v) {
  force(level)
  force(v)
  function(d) { d$ses <- factor(level, levels(df$ses)); d$write <- v; d }
}

rows <- character()
tests <- character()
run_case <- function(case, scenarios, labels, groups, group_labels, weighted) {
  weights <- if (weighted) df$w else rep(1, nrow(df))
  m <- fit_model(weights)
  f <- margins_fn(scenarios, groups, weights, m$p)
  est <- f(m$beta)
  G <- jacobian(f, m$beta, method = "Richardson", method.args = list(r = 6))
  cov <- G %*% m$V %*% t(G)
  S <- length(scenarios)
  H <- length(groups)
  k <- 0
  for (o in OUTCOMES) {
    for (s in seq_len(S)) {
      for (g in seq_len(H)) {
        k <- k + 1
        rows <<- c(rows, paste(case, "margin", o, labels[s], group_labels[g], fmt(est[k]),
          fmt(sqrt(cov[k, k])), sep = ","))
      }
    }
  }
  # Contrasts along the scenarios, within outcome and group: reference (each minus the first)
  # and all pairs (later minus earlier).
  pos <- function(o, s, g) ((o - 1) * S + (s - 1)) * H + g
  for (o in seq_along(OUTCOMES)) {
    for (g in seq_len(H)) {
      for (a in seq_len(S - 1)) {
        for (b in (a + 1):S) {
          cvec <- numeric(length(est))
          cvec[pos(o, b, g)] <- 1
          cvec[pos(o, a, g)] <- -1
          d <- sum(cvec * est)
          se <- sqrt(drop(t(cvec) %*% cov %*% cvec))
          rows <<- c(rows, paste(case, "contrast", OUTCOMES[o],
            paste(labels[b], "-", labels[a]), group_labels[g], fmt(d), fmt(se), sep = ","))
        }
      }
      # Equality of the margins of one outcome across the scenarios: S - 1 differences.
      C <- t(sapply(2:S, function(b) { v <- numeric(length(est)); v[pos(o, b, g)] <- 1;
        v[pos(o, 1, g)] <- -1; v }))
      if (S == 2) C <- matrix(C, 1)
      d <- C %*% est
      chi2 <- drop(t(d) %*% solve(C %*% cov %*% t(C), d))
      tests <<- c(tests, paste(case, OUTCOMES[o], group_labels[g], fmt(chi2), S - 1, sep = ","))
    }
  }
  # Across outcomes: the margins sum to one, so the differences of the first two outcomes
  # carry all the information (full rank 2 (S - 1) when that is at most the number of
  # coefficients; otherwise the covariance is singular and no test is written).
  for (g in seq_len(H)) {
    if (2 * (S - 1) > length(m$beta)) next
    C <- NULL
    for (o in 1:2) {
      for (b in 2:S) {
        v <- numeric(length(est))
        v[pos(o, b, g)] <- 1
        v[pos(o, 1, g)] <- -1
        C <- rbind(C, v)
      }
    }
    d <- C %*% est
    chi2 <- drop(t(d) %*% solve(C %*% cov %*% t(C), d))
    tests <<- c(tests, paste(case, "all", group_labels[g], fmt(chi2), 2 * (S - 1), sep = ","))
  }
  message("case ", case, ": ", length(est), " margins")
}

all_rows <- list(rep(TRUE, nrow(df)))
sexes <- list(df$female == "female", df$female == "male")
ses_levels <- levels(df$ses)
writes <- c(30, 40, 50, 60, 70)

run_case("ses", lapply(ses_levels, set_ses), ses_levels, all_rows, "", FALSE)
run_case("write", lapply(writes, set_write), writes, all_rows, "", FALSE)
run_case("write_over_female", lapply(c(30, 50, 70), set_write), c(30, 50, 70), sexes,
  c("female", "male"), FALSE)
grid <- expand.grid(ses = ses_levels, write = c(30, 70), stringsAsFactors = FALSE)
run_case("ses_write", mapply(set_both, grid$ses, grid$write),
  paste(grid$ses, grid$write, sep = "|"), all_rows, "", FALSE)
run_case("ses_fw", lapply(ses_levels, set_ses), ses_levels, all_rows, "", TRUE)
# Stata's margins ses, atmeans: write at its mean in every row (ses, set, is the only factor).
run_case("ses_atmeans", lapply(ses_levels, function(l) set_both(l, mean(df$write))), ses_levels,
  all_rows, "", FALSE)

info <- list(
  engine = versions(c("stats", "VGAM", "numDeriv")),
  model = "prog ~ ses + write, reference academic; weighted cases: frequency weights w = 1 + id %% 3",
  fit = "vglm(multinomial(refLevel = 'academic')) as hsbdemo.R, vcov at the estimates",
  method = paste(
    "margin = weighted mean over the rows (of the group) of P(outcome) with the variables set;",
    "se from G V G' with G the numDeriv Richardson Jacobian (r = 6)"
  ),
  cases = paste(
    "ses: each ses level; write: write 30..70; write_over_female: write 30/50/70 within female",
    "groups; ses_write: grid ses x write (30, 70), label ses|write, ses varying fastest;",
    "ses_fw: ses levels, frequency weights; ses_atmeans: ses levels with write at its mean",
    "(Stata margins ses, atmeans)"
  )
)
path <- file.path(REF_DIR, "hsbdemo_margins.csv")
writeLines(c(header_lines(SCRIPT, info), "case,kind,outcome,label,group,estimate,se", rows), path)
message("wrote ", path)
path <- file.path(REF_DIR, "hsbdemo_margins_tests.csv")
writeLines(c(header_lines(SCRIPT, info), "case,outcome,group,chi2,df", tests), path)
message("wrote ", path)
