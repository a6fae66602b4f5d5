# Constrained multinomial logit references on the hsbdemo data: R VGAM::vglm(multinomial) with
# constraint matrices, tightly converged; the covariances (inverse information and sandwiches)
# mapped back to the coefficients of every equation and checked here independently of VGAM.
#
#   Rscript tests/reference/R/constraints.R
#
# Definitions shared with tests/test_constraints.py:
#   model        prog ~ ses + write + female, reference outcome academic, ses low < middle <
#                high, female levels female < male
#   constraints  general:write = vocation:write (VGAM: write = cbind(c(1, 1)));
#                vocation:female[T.male] = 0 (VGAM: female = cbind(c(1, 0)))
#   cluster      cid (20 clusters, a column of the data)
# Covariance conventions are multilogit's (and Stata's mlogit): HC0 the plain sandwich,
# HC1 = HC0 * n/(n-1), cluster = G/(G-1) times the sandwich of the cluster sums of the scores.
# With beta = H gamma (H from the constraint matrices), V_beta = H V_gamma H' (singular).

suppressPackageStartupMessages(library(VGAM))
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "constraints.R"
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
    "vglm(family = multinomial(refLevel = 'academic'), constraints = CL, control =",
    "vglm.control(epsilon = %g, maxit = %d, criterion = 'coefficients', half.stepsizing =",
    "FALSE)), refit from its estimates"
  ),
  EPSILON, MAXIT
)

formula <- prog ~ ses + write + female
I2 <- diag(J)
CL <- list("(Intercept)" = I2, ses = I2, write = cbind(c(1, 1)), female = cbind(c(1, 0)))

tight <- function(constraints) {
  fam <- multinomial(refLevel = "academic")
  fit <- vglm(formula, fam, data = df, constraints = constraints, control = CONTROL)
  refit <- vglm(formula, fam,
    data = df, constraints = constraints, control = CONTROL,
    coefstart = coef(fit)
  )
  check(fit@iter < MAXIT && refit@iter < MAXIT, "vglm converged")
  list(fit = refit, iter = fit@iter)
}

patsy_names <- function(r) {
  r <- sub("^\\(Intercept\\)$", "Intercept", r)
  r <- sub("^femalemale$", "female[T.male]", r)
  sub("^ses(middle|high)$", "ses[T.\\1]", r)
}

# H (J p x m): the coefficients of every equation, outcome-major, from VGAM's coefficients
# gamma (term by term, each term's constraint columns in turn).
expand_matrix <- function(fit, X) {
  cm <- constraints(fit)
  p <- ncol(X)
  H <- matrix(0, J * p, 0)
  for (t in seq_len(p)) {
    Ct <- cm[[colnames(X)[t]]]
    block <- matrix(0, J * p, ncol(Ct))
    for (j in seq_len(J)) block[(j - 1) * p + t, ] <- Ct[j, ]
    H <- cbind(H, block)
  }
  H
}

X <- model.matrix(formula, df)
y <- as.integer(df$prog) - 1L
p <- ncol(X)
terms <- patsy_names(colnames(X))
labels <- data.frame(equation = rep(OUTCOMES, each = p), term = rep(terms, J))

# --- constrained fit -------------------------------------------------------------------------
tv <- tight(CL)
fit <- tv$fit
gamma <- coef(fit)
H <- expand_matrix(fit, X)
beta <- as.vector(H %*% gamma)
B <- matrix(beta, p)
eta <- cbind(0, X %*% B)
P <- exp(eta - apply(eta, 1, max))
P <- P / rowSums(P)
check(max(abs(P - fitted(fit))) < 1e-13, "probabilities = VGAM fitted values")
check(beta[p + which(terms == "female[T.male]")] == 0, "vocation:female[T.male] = 0")
check(
  beta[which(terms == "write")] == beta[p + which(terms == "write")],
  "general:write = vocation:write"
)
S <- mnl_scores(X, y, P[, -1]) # n x J p
I_beta <- mnl_information(X, P[, -1])
Sg <- S %*% H
Ig <- t(H) %*% I_beta %*% H
Vg <- unname(vcov(fit))
score_g <- colSums(Sg)
step <- solve(Ig, score_g)
ll <- sum(log(P[cbind(seq_len(n), y + 1L)]))
check(abs(ll - logLik(fit)) <= 1e-12 * abs(ll), "logLik = sum of row terms")
check(max_rel(solve(Ig), Vg) < 1e-10, "vcov = inverse of H' I H")
check(max(abs(step) / abs(gamma)) < 1e-12, "Newton step at the estimates < 1e-12 relative")

V <- H %*% Vg %*% t(H)
meat <- crossprod(Sg)
hc0 <- H %*% Vg %*% meat %*% Vg %*% t(H)
U <- rowsum(Sg, df$cid)
G <- nrow(U)
covs <- list(
  nonrobust = V, HC0 = hc0, HC1 = hc0 * n / (n - 1),
  cluster = G / (G - 1) * H %*% Vg %*% crossprod(U) %*% Vg %*% t(H)
)

# --- unconstrained fit, for the likelihood-ratio test of the two constraints ----------------
full <- tight(list("(Intercept)" = I2, ses = I2, write = I2, female = I2))$fit
lr <- 2 * (as.numeric(logLik(full)) - ll)
k <- length(gamma)
null <- vglm(prog ~ 1, multinomial(refLevel = "academic"), data = df, control = CONTROL)
scalars <- list(
  llf = ll, llf_unconstrained = as.numeric(logLik(full)), lr_stat = lr,
  lr_df = length(coef(full)) - k, lr_pvalue = pchisq(lr, length(coef(full)) - k, lower.tail = FALSE),
  llnull = as.numeric(logLik(null)), k_params = k, df_model = k - J, nobs = n,
  aic = AIC(fit), bic = BIC(fit)
)
check(abs(scalars$aic - (-2 * ll + 2 * k)) < 1e-10, "AIC = -2 llf + 2 k, k = dim gamma")

as_matrix <- function(v) matrix(v, ncol = J, dimnames = list(terms, OUTCOMES))
convergence <- sprintf(
  "%d iterations (+%d from the estimates); max |score_gamma| %.3g; max relative Newton step %.3g",
  tv$iter, fit@iter, max(abs(score_g)), max(abs(step) / abs(gamma))
)
info <- list(
  engine = versions(c("stats", "VGAM")), fit = CONTROL_TEXT, convergence = convergence,
  model = "prog ~ ses + write + female",
  constraints = paste(
    "CL = list('(Intercept)' = diag(2), ses = diag(2), write = cbind(c(1, 1)),",
    "female = cbind(c(1, 0))): general:write = vocation:write, vocation:female[T.male] = 0"
  ),
  scalars = paste(
    "llf_unconstrained from the fit with diag(2) for every term; lr_stat = 2 (llf_unconstrained",
    "- llf) on lr_df = 2; llnull from prog ~ 1; se of the fixed coefficient 0"
  )
)
write_estimates("hsbdemo_constrained", SCRIPT, info, as_matrix(beta),
  as_matrix(sqrt(pmax(diag(V), 0))), scalars)
cov_info <- c(info[c("engine", "fit", "convergence", "model", "constraints")], list(
  cov_types = paste(
    "with H mapping VGAM's coefficients to every equation's, Vg = vcov(fit) and scores",
    "s_i = (d_i - P_i) kron x_i: nonrobust = H Vg H'; HC0 = H Vg (sum H's_i s_i'H) Vg H';",
    "HC1 = HC0 * n/(n-1); cluster = G/(G-1) H Vg (sum_g u_g u_g') Vg H', u_g the cluster sums",
    "of H's_i"
  ),
  cluster = sprintf("cid, G = %d", G)
))
write_covariances("hsbdemo_constrained_cov", SCRIPT, cov_info, covs, labels)
