# Multinomial logit references on the hsbdemo data: R VGAM::vglm(multinomial), tightly converged;
# robust and cluster-robust covariances computed here from the fitted probabilities (sandwich
# has no estfun method for vglm or multinom); frequency weights through vglm's prior weights.
#
#   Rscript tests/reference/R/hsbdemo.R
#
# Definitions shared with tests/test_reference_*.py:
#   model    prog ~ ses + write, reference outcome academic, ses levels low < middle < high
#   cluster  cid (20 school/class clusters, a column of the data)
#   weights  w = 1 + id %% 3 (integer frequency weights 1, 2, 3; id a column of the data)
# Covariance conventions are multilogit's (and Stata's mlogit): HC0 the plain sandwich,
# HC1 = HC0 * n/(n-1), cluster = G/(G-1) times the sandwich of the cluster sums of the scores.

suppressPackageStartupMessages(library(VGAM))
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "hsbdemo.R"
NAME <- "hsbdemo_prog_ses_write"
df <- load_hsbdemo()
df$w <- 1 + df$id %% 3
n <- nrow(df)
OUTCOMES <- c("general", "vocation") # non-reference outcomes, in level order

# VGAM's default step-halving rejects any Fisher-scoring step that does not raise the
# log-likelihood in floating point; near the optimum that stops it about 1e-8 (relative) short
# of the MLE (score ~1e-5) with a warning.  Without step-halving the iteration converges on the
# coefficients; a second fit started at the estimates evaluates vcov at the converged point.
CONTROL <- vglm.control(
  epsilon = EPSILON, maxit = MAXIT, criterion = "coefficients", half.stepsizing = FALSE
)
CONTROL_TEXT <- sprintf(
  paste(
    "vglm(family = multinomial(refLevel = 'academic'), control = vglm.control(epsilon = %g,",
    "maxit = %d, criterion = 'coefficients', half.stepsizing = FALSE)), refit from its estimates"
  ),
  EPSILON, MAXIT
)

tight_vglm <- function(formula, data, weighted = FALSE) {
  fam <- multinomial(refLevel = "academic")
  if (weighted) {
    fit <- vglm(formula, fam, data = data, weights = w, control = CONTROL)
    refit <- vglm(formula, fam, data = data, weights = w, control = CONTROL, coefstart = coef(fit))
  } else {
    fit <- vglm(formula, fam, data = data, control = CONTROL)
    refit <- vglm(formula, fam, data = data, control = CONTROL, coefstart = coef(fit))
  }
  check(fit@iter < MAXIT && refit@iter < MAXIT, "vglm converged")
  list(fit = refit, iter = fit@iter)
}

patsy_names <- function(r) {
  r <- sub("^\\(Intercept\\)$", "Intercept", r)
  sub("^ses(middle|high)$", "ses[T.\\1]", r)
}

# VGAM orders its coefficients term-major ("(Intercept):1", "(Intercept):2", ...); multilogit
# outcome-major (all terms of general, then all of vocation).
vgam_order <- function(terms_r) {
  as.vector(sapply(seq_along(OUTCOMES), function(j) paste0(terms_r, ":", j)))
}

# Fitted probabilities, scores, information and diagnostics, independent of VGAM.
analyse <- function(tv, data, f = rep(1, nrow(data))) {
  fit <- tv$fit
  X <- model.matrix(~ ses + write, data)
  y <- as.integer(data$prog) - 1L
  beta <- coef(fit)[vgam_order(colnames(X))]
  B <- matrix(beta, ncol(X)) # p x J
  eta <- cbind(0, X %*% B)
  P <- exp(eta - apply(eta, 1, max))
  P <- P / rowSums(P)
  check(max(abs(P - fitted(fit))) < 1e-13, "probabilities = VGAM fitted values")
  S <- mnl_scores(X, y, P[, -1])
  H <- mnl_information(X, P[, -1], f)
  V <- unname(vcov(fit)[vgam_order(colnames(X)), vgam_order(colnames(X))])
  score <- colSums(f * S)
  step <- solve(H, score)
  ll <- sum(f * log(P[cbind(seq_len(nrow(X)), y + 1L)]))
  check(abs(ll - logLik(fit)) <= 1e-12 * abs(ll), "logLik = sum of row terms")
  check(max_rel(solve(H), V) < 1e-10, "vcov = inverse information")
  check(max(abs(step) / abs(beta)) < 1e-12, "Newton step at the estimates < 1e-12 relative")
  list(
    X = X, y = y, P = P, S = S, V = V, beta = beta, ll = ll, terms = patsy_names(colnames(X)),
    convergence = sprintf(
      "%d iterations (+%d from the estimates); max |score| %.3g; max relative Newton step %.3g",
      tv$iter, tv$fit@iter, max(abs(score)), max(abs(step) / abs(beta))
    )
  )
}

robust_covs <- function(a, groups) {
  m <- nrow(a$S)
  meat <- crossprod(a$S)
  hc0 <- a$V %*% meat %*% a$V
  U <- rowsum(a$S, groups)
  G <- nrow(U)
  list(
    nonrobust = a$V, HC0 = hc0, HC1 = hc0 * m / (m - 1),
    cluster = G / (G - 1) * a$V %*% crossprod(U) %*% a$V
  )
}

as_matrix <- function(v, terms) matrix(v, ncol = length(OUTCOMES), dimnames = list(terms, OUTCOMES))

engine <- versions(c("stats", "VGAM"))
formula <- prog ~ ses + write

# --- unweighted ------------------------------------------------------------------------------
tv <- tight_vglm(formula, df)
a <- analyse(tv, df)
null <- tight_vglm(prog ~ 1, df)$fit
counts <- table(df$prog)
llnull_closed <- sum(counts * log(counts / n))
check(abs(logLik(null) - llnull_closed) < 1e-12 * abs(llnull_closed), "llnull closed form")
k <- length(a$beta)
check(abs(deviance(tv$fit) + 2 * a$ll) < 1e-10, "deviance = -2 llf")
scalars <- list(
  llf = a$ll, llnull = as.numeric(logLik(null)), aic = AIC(tv$fit), bic = BIC(tv$fit),
  deviance = deviance(tv$fit), nobs = n, df_model = k - length(OUTCOMES)
)
check(abs(scalars$bic - (-2 * a$ll + k * log(n))) < 1e-10, "BIC = -2 llf + k log n")
info <- list(
  engine = engine, fit = CONTROL_TEXT, convergence = a$convergence,
  model = "prog ~ ses + write; llnull from prog ~ 1 (equal to sum n_k log(n_k / n))"
)
write_estimates(NAME, SCRIPT, info, as_matrix(a$beta, a$terms),
  as_matrix(sqrt(diag(a$V)), a$terms), scalars)

labels <- data.frame(equation = rep(OUTCOMES, each = length(a$terms)), term = rep(a$terms, 2))
covs <- robust_covs(a, df$cid)
cov_info <- c(info[c("engine", "fit", "convergence")], list(
  model = "prog ~ ses + write",
  cov_types = paste(
    "nonrobust = vcov(fit); with bread = vcov(fit) and scores s_i = (d_i - P_i) kron x_i:",
    "HC0 = bread (sum s_i s_i') bread; HC1 = HC0 * n/(n-1);",
    "cluster = G/(G-1) bread (sum_g u_g u_g') bread, u_g = sum of s_i in cluster g"
  ),
  cluster = sprintf("cid, G = %d", length(unique(df$cid)))
))
write_covariances(paste0(NAME, "_cov"), SCRIPT, cov_info, covs, labels)

# --- frequency weights -----------------------------------------------------------------------
wtv <- tight_vglm(formula, df, weighted = TRUE)
wa <- analyse(wtv, df, df$w)
big <- df[rep(seq_len(n), df$w), ]
etv <- tight_vglm(formula, big)
ea <- analyse(etv, big)
enull <- tight_vglm(prog ~ 1, big)$fit
check(max_rel(wa$beta, ea$beta) < 1e-10, "weighted = expanded coef")
check(max_rel(wa$V, ea$V) < 1e-10, "weighted = expanded vcov")
check(abs(logLik(wtv$fit) - logLik(etv$fit)) < 1e-10, "weighted = expanded logLik")
N <- nrow(big)
scalars <- list(
  llf = wa$ll, llnull = as.numeric(logLik(enull)), aic = AIC(etv$fit), bic = BIC(etv$fit),
  deviance = -2 * wa$ll, nobs = N, df_model = k - length(OUTCOMES)
)
check(abs(scalars$bic - (-2 * wa$ll + k * log(N))) < 1e-10, "BIC of the repeated data")
winfo <- list(
  engine = engine, fit = paste(CONTROL_TEXT, "with vglm(weights = w)"),
  convergence = wa$convergence,
  model = "prog ~ ses + write",
  weights = "w = 1 + id %% 3 (frequency weights)",
  scalars = paste(
    "llnull, aic, bic from the data with each row repeated w times (same fit);",
    "nobs = sum(w)"
  )
)
write_estimates(paste0(NAME, "_fw"), SCRIPT, winfo, as_matrix(wa$beta, a$terms),
  as_matrix(sqrt(diag(wa$V)), a$terms), scalars)

wcov_info <- c(cov_info[c("engine", "fit")], list(
  convergence = ea$convergence,
  model = "prog ~ ses + write on the data with each row repeated w times",
  weights = "w = 1 + id %% 3 (frequency weights)",
  cov_types = paste(cov_info$cov_types, "(n = sum(w), clusters cid of the original rows)")
))
write_covariances(paste0(NAME, "_fw_cov"), SCRIPT, wcov_info, robust_covs(ea, big$cid), labels)
