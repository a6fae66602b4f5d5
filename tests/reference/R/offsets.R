# Multinomial logit with offsets on the hsbdemo data: R VGAM::vglm(multinomial, offset = O), one
# offset column per linear predictor, tightly converged; the covariances (inverse information
# and sandwiches) checked here independently of VGAM, and the null model (intercepts and the
# offset) fitted.
#
#   Rscript tests/reference/R/offsets.R
#
# Definitions shared with tests/test_offsets.py:
#   model     prog ~ ses + female, reference outcome academic, ses low < middle < high,
#             female levels female < male
#   offsets   "every": the same offset o = -0.08 * write in both equations
#             "matrix": general o1 = -0.08 * write, vocation o2 = 0.5 - 0.06 * math
#   cluster   cid (20 clusters)

suppressPackageStartupMessages(library(VGAM))
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "offsets.R"
df <- load_hsbdemo()
df$female <- factor(df$female, levels = c("female", "male"))
n <- nrow(df)
OUTCOMES <- c("general", "vocation")
J <- length(OUTCOMES)

CONTROL <- vglm.control(
  epsilon = EPSILON, maxit = MAXIT, criterion = "coefficients", half.stepsizing = FALSE
)
CONTROL_TEXT <- sprintf(
  paste(
    "vglm(family = multinomial(refLevel = 'academic'), offset = O, control =",
    "vglm.control(epsilon = %g, maxit = %d, criterion = 'coefficients', half.stepsizing =",
    "FALSE)), refit from its estimates"
  ),
  EPSILON, MAXIT
)

OFFSETS <- list(
  every = cbind(-0.08 * df$write, -0.08 * df$write),
  matrix = cbind(-0.08 * df$write, 0.5 - 0.06 * df$math)
)
OFFSET_TEXT <- list(
  every = "O = cbind(-0.08 * write, -0.08 * write) (the same offset in every equation)",
  matrix = "O = cbind(-0.08 * write, 0.5 - 0.06 * math) (general, vocation)"
)

tight <- function(formula, O) {
  fam <- multinomial(refLevel = "academic")
  fit <- vglm(formula, fam, data = df, offset = O, control = CONTROL)
  refit <- vglm(formula, fam, data = df, offset = O, control = CONTROL, coefstart = coef(fit))
  check(fit@iter < MAXIT && refit@iter < MAXIT, "vglm converged")
  list(fit = refit, iter = fit@iter)
}

patsy_names <- function(r) {
  r <- sub("^\\(Intercept\\)$", "Intercept", r)
  r <- sub("^femalemale$", "female[T.male]", r)
  sub("^ses(middle|high)$", "ses[T.\\1]", r)
}

vgam_order <- function(terms_r) {
  as.vector(sapply(seq_len(J), function(j) paste0(terms_r, ":", j)))
}

formula <- prog ~ ses + female
X <- model.matrix(formula, df)
y <- as.integer(df$prog) - 1L
p <- ncol(X)
terms <- patsy_names(colnames(X))
labels <- data.frame(equation = rep(OUTCOMES, each = p), term = rep(terms, J))
as_matrix <- function(v) matrix(v, ncol = J, dimnames = list(terms, OUTCOMES))

for (name in names(OFFSETS)) {
  O <- OFFSETS[[name]]
  tv <- tight(formula, O)
  fit <- tv$fit
  beta <- coef(fit)[vgam_order(colnames(X))]
  B <- matrix(beta, p)
  eta <- cbind(0, X %*% B + O)
  P <- exp(eta - apply(eta, 1, max))
  P <- P / rowSums(P)
  check(max(abs(P - fitted(fit))) < 1e-13, "probabilities with the offset = VGAM fitted values")
  S <- mnl_scores(X, y, P[, -1])
  H <- mnl_information(X, P[, -1])
  V <- unname(vcov(fit)[vgam_order(colnames(X)), vgam_order(colnames(X))])
  score <- colSums(S)
  step <- solve(H, score)
  ll <- sum(log(P[cbind(seq_len(n), y + 1L)]))
  check(abs(ll - logLik(fit)) <= 1e-12 * abs(ll), "logLik = sum of row terms")
  check(max_rel(solve(H), V) < 1e-10, "vcov = inverse information")
  check(max(abs(step) / abs(beta)) < 1e-12, "Newton step at the estimates < 1e-12 relative")

  # The null model: intercepts and the offset (no closed form).
  null <- tight(prog ~ 1, O)$fit
  eta0 <- cbind(0, matrix(coef(null), n, J, byrow = TRUE) + O)
  P0 <- exp(eta0 - apply(eta0, 1, max))
  P0 <- P0 / rowSums(P0)
  ll0 <- sum(log(P0[cbind(seq_len(n), y + 1L)]))
  check(abs(ll0 - logLik(null)) <= 1e-12 * abs(ll0), "null logLik = sum of row terms")
  score0 <- colSums(mnl_scores(matrix(1, n, 1), y, P0[, -1]))
  check(max(abs(score0)) < 1e-10, "null model: score 0 at its estimates")

  meat <- crossprod(S)
  hc0 <- V %*% meat %*% V
  U <- rowsum(S, df$cid)
  G <- nrow(U)
  covs <- list(
    nonrobust = V, HC0 = hc0, HC1 = hc0 * n / (n - 1),
    cluster = G / (G - 1) * V %*% crossprod(U) %*% V
  )
  k <- length(beta)
  scalars <- list(
    llf = ll, llnull = ll0, k_params = k, df_model = k - J, nobs = n,
    aic = AIC(fit), bic = BIC(fit)
  )
  check(abs(scalars$aic - (-2 * ll + 2 * k)) < 1e-10, "AIC counts no parameter for the offset")
  info <- list(
    engine = versions(c("stats", "VGAM")), fit = CONTROL_TEXT,
    convergence = sprintf(
      "%d iterations (+%d from the estimates); max |score| %.3g; max relative Newton step %.3g",
      tv$iter, fit@iter, max(abs(score)), max(abs(step) / abs(beta))
    ),
    model = "prog ~ ses + female", offset = OFFSET_TEXT[[name]],
    scalars = "llnull from vglm(prog ~ 1, offset = O) (intercepts and the offset)"
  )
  out <- paste0("hsbdemo_offset_", name)
  write_estimates(out, SCRIPT, info, as_matrix(beta), as_matrix(sqrt(diag(V))), scalars)
  cov_info <- c(info[c("engine", "fit", "convergence", "model", "offset")], list(
    cov_types = paste(
      "nonrobust = vcov(fit); with scores s_i = (d_i - P_i) kron x_i (P with the offset):",
      "HC0 = V (sum s_i s_i') V; HC1 = HC0 * n/(n-1); cluster = G/(G-1) V (sum_g u_g u_g') V"
    ),
    cluster = sprintf("cid, G = %d", G)
  ))
  write_covariances(paste0(out, "_cov"), SCRIPT, cov_info, covs, labels)
}
