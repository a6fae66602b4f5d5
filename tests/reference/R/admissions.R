# Binary logit references on the admissions data: R glm(family = binomial), tightly converged;
# robust covariances from sandwich; frequency weights through glm's prior weights.
#
#   Rscript tests/reference/R/admissions.R
#
# Definitions shared with tests/test_reference_*.py (row = 1-based row number of admissions.csv):
#   cluster  cl = row %% 20          (20 clusters of 20 rows)
#   weights  w  = 1 + row %% 3       (integer frequency weights 1, 2, 3)
# A multinomial logit with outcomes (0, 1) and reference 0 has these as its outcome-1 equation.

suppressPackageStartupMessages(library(sandwich))
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "admissions.R"
df <- load_admissions()
n <- nrow(df)
df$row <- seq_len(n)
df$cl <- df$row %% 20
df$w <- 1 + df$row %% 3
ctrl <- glm.control(epsilon = EPSILON, maxit = MAXIT)

# glm stops on the relative change of the deviance, which is quadratic in the last step, and its
# vcov comes from the weights of the previous iterate: both can leave the covariance ~1e-8 off.
# A second fit started at the estimates puts the weights (and vcov) at the converged point.
tight_glm <- function(formula, data, weighted = FALSE) {
  if (weighted) {
    fit <- glm(formula, binomial, data, weights = w, control = ctrl)
    refit <- glm(formula, binomial, data, weights = w, control = ctrl, start = coef(fit))
  } else {
    fit <- glm(formula, binomial, data, control = ctrl)
    refit <- glm(formula, binomial, data, control = ctrl, start = coef(fit))
  }
  check(fit$converged && refit$converged, "glm converged")
  refit$first_iter <- fit$iter
  refit
}

MODELS <- list(
  admissions_admit_gre_gpa = admit ~ gre + gpa,
  admissions_admit_gre_gpa_rank = admit ~ gre + gpa + rank
)

patsy_names <- function(r) {
  r <- sub("^\\(Intercept\\)$", "Intercept", r)
  sub("^rank([0-9])$", "C(rank)[T.\\1]", r)
}

# Score, Newton step and log-likelihood checks at the estimates; returns the diagnostics.
diagnose <- function(fit, f = rep(1, nrow(model.matrix(fit)))) {
  X <- model.matrix(fit)
  mu <- fitted(fit)
  y <- fit$y
  score <- crossprod(X, f * (y - mu))
  info <- crossprod(X, f * mu * (1 - mu) * X)
  step <- solve(info, score)
  ll <- sum(f * (y * log(mu) + (1 - y) * log1p(-mu)))
  check(fit$converged, "glm converged")
  check(abs(ll - as.numeric(logLik(fit))) <= 1e-12 * abs(ll), "logLik = sum of row terms")
  check(max_rel(solve(info), vcov(fit)) < 1e-10, "vcov = inverse information")
  check(max(abs(step) / abs(coef(fit))) < 1e-12, "Newton step at the estimates < 1e-12 relative")
  list(
    iterations = fit$first_iter,
    max_abs_score = max(abs(score)),
    max_rel_newton_step = max(abs(step) / abs(coef(fit)))
  )
}

settings <- function(diag, extra = list()) {
  c(
    list(
      engine = versions(c("stats", "sandwich")),
      fit = sprintf(
        paste(
          "glm(family = binomial, control = glm.control(epsilon = %g, maxit = %d)),",
          "refit from its estimates"
        ),
        EPSILON, MAXIT
      ),
      convergence = sprintf(
        "%d iterations (+1 from the estimates); max |score| %.3g; max relative Newton step %.3g",
        diag$iterations, diag$max_abs_score, diag$max_rel_newton_step
      )
    ),
    extra
  )
}

for (name in names(MODELS)) {
  formula <- MODELS[[name]]
  fit <- tight_glm(formula, df)
  null <- tight_glm(admit ~ 1, df)
  diag <- diagnose(fit)
  k <- length(coef(fit))
  n1 <- sum(df$admit)
  llnull_closed <- n1 * log(n1 / n) + (n - n1) * log((n - n1) / n)
  check(
    abs(as.numeric(logLik(null)) - llnull_closed) < 1e-12 * abs(llnull_closed),
    "llnull closed form"
  )
  terms <- patsy_names(names(coef(fit)))
  coef_m <- matrix(coef(fit), dimnames = list(terms, "1"))
  se_m <- matrix(sqrt(diag(vcov(fit))), dimnames = list(terms, "1"))
  scalars <- list(
    llf = as.numeric(logLik(fit)), llnull = as.numeric(logLik(null)), aic = AIC(fit),
    bic = BIC(fit), deviance = deviance(fit), nobs = nobs(fit), df_model = k - 1
  )
  info <- settings(diag, list(
    model = paste(deparse(formula), "(rank a factor, level 1 the base); llnull from admit ~ 1")
  ))
  write_estimates(name, SCRIPT, info, coef_m, se_m, scalars)

  # Robust covariances. Stata's HC1 is HC0 * n/(n-1) (sandwich's own "HC1" uses n/(n-k)).
  hc0 <- vcovHC(fit, type = "HC0")
  X <- model.matrix(fit)
  S <- (fit$y - fitted(fit)) * X
  manual <- vcov(fit) %*% crossprod(S) %*% vcov(fit)
  check(max_rel(hc0, manual) < 1e-10, "vcovHC HC0 = bread meat bread")
  cl <- vcovCL(fit, cluster = df$cl, type = "HC0", cadjust = TRUE)
  U <- rowsum(S, df$cl)
  G <- nrow(U)
  manual <- G / (G - 1) * vcov(fit) %*% crossprod(U) %*% vcov(fit)
  check(max_rel(cl, manual) < 1e-10, "vcovCL = G/(G-1) sandwich")
  covs <- list(nonrobust = vcov(fit), HC0 = hc0, HC1 = hc0 * n / (n - 1), cluster = cl)
  covs <- lapply(covs, function(m) unname(as.matrix(m)))
  labels <- data.frame(equation = "1", term = terms)
  write_covariances(paste0(name, "_cov"), SCRIPT, settings(diag, list(
    model = deparse(formula),
    cov_types = paste(
      "nonrobust = vcov(fit); HC0 = sandwich::vcovHC(fit, type = 'HC0');",
      "HC1 = HC0 * n/(n-1) (Stata vce(robust));",
      "cluster = sandwich::vcovCL(fit, cluster = cl, type = 'HC0', cadjust = TRUE) (G/(G-1))"
    ),
    cluster = sprintf("cl = row %%%% 20, row the 1-based row number; G = %d", G)
  )), covs, labels)

  # Frequency weights: glm's prior weights, checked against the data with each row repeated.
  wfit <- tight_glm(formula, df, weighted = TRUE)
  big <- df[rep(seq_len(n), df$w), ]
  efit <- tight_glm(formula, big)
  enull <- tight_glm(admit ~ 1, big)
  wdiag <- diagnose(wfit, df$w)
  ediag <- diagnose(efit)
  check(max_rel(coef(wfit), coef(efit)) < 1e-10, "weighted = expanded coef")
  check(max_rel(vcov(wfit), vcov(efit)) < 1e-10, "weighted = expanded vcov")
  check(abs(logLik(wfit) - logLik(efit)) < 1e-10, "weighted = expanded logLik")
  scalars <- list(
    llf = as.numeric(logLik(wfit)), llnull = as.numeric(logLik(enull)), aic = AIC(efit),
    bic = BIC(efit), deviance = deviance(wfit), nobs = sum(df$w), df_model = k - 1
  )
  wcoef <- matrix(coef(wfit), dimnames = list(terms, "1"))
  wse <- matrix(sqrt(diag(vcov(wfit))), dimnames = list(terms, "1"))
  winfo <- settings(wdiag, list(
    model = paste(deparse(formula), "with glm(weights = w)"),
    weights = "w = 1 + row %% 3, row the 1-based row number (frequency weights)",
    scalars = "llnull, aic, bic, nobs from the data with each row repeated w times (same fit)"
  ))
  write_estimates(paste0(name, "_fw"), SCRIPT, winfo, wcoef, wse, scalars)

  # Robust covariances with frequency weights are those of the repeated data.
  ehc0 <- vcovHC(efit, type = "HC0")
  N <- nrow(big)
  ecovs <- list(
    nonrobust = vcov(efit), HC0 = ehc0, HC1 = ehc0 * N / (N - 1),
    cluster = vcovCL(efit, cluster = big$cl, type = "HC0", cadjust = TRUE)
  )
  ecovs <- lapply(ecovs, function(m) unname(as.matrix(m)))
  write_covariances(paste0(name, "_fw_cov"), SCRIPT, settings(ediag, list(
    model = paste(deparse(formula), "on the data with each row repeated w times"),
    weights = "w = 1 + row %% 3, row the 1-based row number (frequency weights)",
    cov_types = paste(
      "as in the unweighted _cov file, with n = sum(w) and clusters cl = row %% 20",
      "of the original rows"
    )
  )), ecovs, labels)
}
