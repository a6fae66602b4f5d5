# Bias-reduced multinomial logit references: R brglm2::brmultinom (Kosmidis & Firth 2011),
# mean (type "AS_mean", the Jeffreys-prior penalised likelihood) and median ("AS_median") bias
# reduction, and maximum likelihood ("ML", checked equal to nnet::multinom), tightly converged.
#
#   Rscript tests/reference/R/brglm2.R
#
# Data (written beside the results as tests/reference/data/*.csv, so the tests need no R):
#   housing      MASS::housing, Sat ~ Infl + Type + Cont, frequency weights Freq, reference Low
#                (the example of ?brmultinom)
#   alligators   brglm2::alligators, foodchoice ~ size + lake, reference Fish: with weights freq
#                (finite ML estimates) and with weights round(freq / 3), the brglm2 vignette's
#                data whose ML estimates are infinite (separated)
#   endometrial  brglm2::endometrial, HG ~ NV + PI + EH, reference 0: a binary outcome with NV
#                quasi-separating (ML estimate of NV infinite)
# For every fit the script asserts, independently of brglm2, that the estimates are stationary
# points of the penalised log-likelihood l(beta) + 1/2 log det I(beta) (AS_mean) or of l (ML),
# by central differences, and that vcov is the inverse of the information at the estimates.

suppressPackageStartupMessages({
  library(brglm2)
  library(nnet)
})
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "brglm2.R"
DATA_OUT <- file.path(REF_DIR, "data")
dir.create(DATA_OUT, showWarnings = FALSE)
EPS_BR <- 1e-13
MAXIT_BR <- 1000L
engine <- versions(c("stats", "brglm2", "nnet", "MASS"))

patsy_names <- function(r, factors) {
  r <- sub("^\\(Intercept\\)$", "Intercept", r)
  for (f in factors) r <- sub(paste0("^", f, "(.+)$"), paste0(f, "[T.\\1]"), r)
  r
}

# Probabilities, log-likelihood and information at coefficient matrix B (J x p), from the
# model matrix alone.
mnl_at <- function(B, X, y, f) {
  eta <- cbind(0, X %*% t(B))
  P <- exp(eta - apply(eta, 1, max))
  P <- P / rowSums(P)
  keep <- f > 0
  ll <- sum(f[keep] * log(P[cbind(which(keep), y[keep] + 1L)]))
  list(P = P, ll = ll, H = mnl_information(X, P[, -1, drop = FALSE], f))
}

penalised <- function(B, X, y, f) {
  a <- mnl_at(B, X, y, f)
  a$ll + 0.5 * as.numeric(determinant(a$H, logarithm = TRUE)$modulus)
}

# Central-difference gradient of fun at B (in the flat outcome-major order).
num_grad <- function(fun, B, h = 1e-5) {
  b <- as.vector(t(B))
  sapply(seq_along(b), function(k) {
    e <- replace(numeric(length(b)), k, h)
    (fun(matrix(b + e, nrow(B), byrow = TRUE)) - fun(matrix(b - e, nrow(B), byrow = TRUE))) / (2 * h)
  })
}

fit_br <- function(formula, data, weights, ref, type) {
  data$.w <- weights
  ctl <- list(epsilon = EPS_BR, maxit = MAXIT_BR, type = type)
  fit <- brmultinom(formula, data = data, weights = .w, ref = ref, control = ctl)
  check(isTRUE(fit$converged) && fit$iter < MAXIT_BR, paste(type, "converged"))
  fit
}

write_fit <- function(name, fit, formula, data, weights, factors, type, model_text) {
  X <- model.matrix(formula, data)
  response <- data[[all.vars(formula)[1]]]
  y <- as.integer(response) - 1L
  B <- coef(fit) # J x p, rows = non-reference outcomes
  B <- B[, colnames(X), drop = FALSE]
  a <- mnl_at(B, X, y, weights)
  # brmultinom drops rows of weight 0 from its fitted values
  fitted_p <- fitted(fit)
  P_used <- if (nrow(fitted_p) == nrow(X)) a$P else a$P[weights > 0, , drop = FALSE]
  check(max(abs(P_used - fitted_p)) < 1e-12, paste(name, "probabilities = fitted values"))
  V <- vcov(fit)
  check(max_rel(solve(a$H), unname(V)) < 1e-9, paste(name, "vcov = inverse information"))
  grad <- if (type == "AS_mean") {
    num_grad(function(b) penalised(b, X, y, weights), B)
  } else if (type == "ML") {
    num_grad(function(b) mnl_at(b, X, y, weights)$ll, B)
  } else {
    NULL
  }
  if (!is.null(grad)) {
    check(max(abs(grad)) < 1e-6, paste(name, "gradient of the objective at the estimates ~ 0"))
  }
  logdet <- as.numeric(determinant(a$H, logarithm = TRUE)$modulus)
  terms <- patsy_names(colnames(X), factors)
  outcomes <- rownames(B)
  coef_m <- matrix(t(B), ncol = length(outcomes), dimnames = list(terms, outcomes))
  se_m <- matrix(sqrt(diag(V)), ncol = length(outcomes), dimnames = list(terms, outcomes))
  scalars <- list(
    llf = a$ll, llf_penalized = a$ll + 0.5 * logdet, nobs = sum(weights),
    iterations = fit$iter
  )
  check(abs(a$ll - as.numeric(logLik(fit))) <= 1e-9 * abs(a$ll), paste(name, "logLik = llf"))
  info <- list(
    engine = engine,
    fit = sprintf(
      "brmultinom(type = '%s', control = list(epsilon = %g, maxit = %d))", type, EPS_BR,
      MAXIT_BR
    ),
    convergence = sprintf(
      "%d iterations; max |central-difference gradient of the objective| %s", fit$iter,
      if (is.null(grad)) "not checked (no closed-form objective)" else sprintf("%.3g", max(abs(grad)))
    ),
    model = model_text,
    scalars = "llf = ordinary log-likelihood; llf_penalized = llf + 1/2 log det I (Jeffreys)"
  )
  write_estimates(name, SCRIPT, info, coef_m, se_m, scalars)
}

# --- housing -------------------------------------------------------------------------------
data("housing", package = "MASS")
housing$Sat <- factor(housing$Sat, ordered = FALSE)
write.csv(housing, file.path(DATA_OUT, "housing.csv"), row.names = FALSE)
hf <- Sat ~ Infl + Type + Cont
nn <- multinom(hf, data = housing, weights = Freq, reltol = 1e-15, maxit = 1000, trace = FALSE)
for (type in c("ML", "AS_mean", "AS_median")) {
  fit <- fit_br(hf, housing, housing$Freq, 1, type)
  if (type == "ML") {
    check(max(abs(coef(nn) - coef(fit))) < 1e-6, "brglm2 ML = nnet::multinom")
  }
  write_fit(
    paste0("housing_", tolower(type)), fit, hf, housing, housing$Freq, c("Infl", "Type", "Cont"),
    type, "Sat ~ Infl + Type + Cont, weights Freq, reference Low (MASS::housing)"
  )
}

# --- alligators ----------------------------------------------------------------------------
data("alligators", package = "brglm2")
write.csv(alligators, file.path(DATA_OUT, "alligators.csv"), row.names = FALSE)
af <- foodchoice ~ size + lake
for (type in c("ML", "AS_mean", "AS_median")) {
  fit <- fit_br(af, alligators, alligators$freq, 1, type)
  write_fit(
    paste0("alligators_", tolower(type)), fit, af, alligators, alligators$freq,
    c("size", "lake"), type, "foodchoice ~ size + lake, weights freq, reference Fish"
  )
}
w3 <- round(alligators$freq / 3)
for (type in c("AS_mean", "AS_median")) {
  fit <- fit_br(af, alligators, w3, 1, type)
  write_fit(
    paste0("alligators3_", tolower(type)), fit, af, alligators, w3, c("size", "lake"), type,
    "foodchoice ~ size + lake, weights round(freq / 3) (ML estimates infinite), reference Fish"
  )
}

# --- endometrial ---------------------------------------------------------------------------
data("endometrial", package = "brglm2")
write.csv(endometrial, file.path(DATA_OUT, "endometrial.csv"), row.names = FALSE)
endometrial$HG <- factor(endometrial$HG, levels = c(0, 1))
ef <- HG ~ NV + PI + EH
for (type in c("AS_mean", "AS_median")) {
  fit <- fit_br(ef, endometrial, rep(1, nrow(endometrial)), 1, type)
  write_fit(
    paste0("endometrial_", tolower(type)), fit, ef, endometrial, rep(1, nrow(endometrial)),
    character(), type, "HG ~ NV + PI + EH (NV quasi-separates; ML estimate infinite), reference 0"
  )
}
