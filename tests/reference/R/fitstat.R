# Measures of fit after a multinomial logit, with the definitions of Stata's fitstat (Long and
# Freese, SPost13), computed from a tightly converged VGAM::vglm fit (as hsbdemo.R) and the
# closed-form intercept-only log-likelihood (checked against nnet::multinom's fit of prog ~ 1);
# the count measures from the fitted probabilities.
#
#   Rscript tests/reference/R/fitstat.R
#
# model: prog ~ ses + write on hsbdemo, reference academic

suppressPackageStartupMessages({
  library(nnet)
  library(VGAM)
})
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "fitstat.R"
df <- load_hsbdemo()
n <- nrow(df)
CONTROL <- vglm.control(
  epsilon = EPSILON, maxit = MAXIT, criterion = "coefficients", half.stepsizing = FALSE
)
fam <- multinomial(refLevel = "academic")
first <- vglm(prog ~ ses + write, fam, data = df, control = CONTROL)
fit <- vglm(prog ~ ses + write, fam, data = df, control = CONTROL, coefstart = coef(first))
null <- multinom(prog ~ 1, data = df, reltol = 1e-15, abstol = 1e-300, maxit = 10000,
                 trace = FALSE)
X <- model.matrix(~ ses + write, df)
y <- as.integer(df$prog) - 1L
B <- matrix(coef(fit), nrow = 2, dimnames = list(c("general", "vocation"), colnames(X))) # VGAM: term-major
eta <- cbind(0, X %*% t(B))
P <- exp(eta - apply(eta, 1, max))
P <- P / rowSums(P)
ll1 <- sum(log(P[cbind(seq_len(n), y + 1L)]))
check(abs(ll1 - as.numeric(logLik(fit))) < 1e-9, "logLik = sum of row terms")
score <- colSums(mnl_scores(X, y, P[, -1]))
check(max(abs(score)) < 1e-9, "vglm converged (score ~ 0)")
counts <- table(df$prog)
ll0 <- sum(counts * log(counts / n))
check(abs(ll0 - as.numeric(logLik(null))) < 1e-6, "intercept-only logLik = closed form (nnet)")
K <- length(B)
d <- K - ncol(P) + 1 # slopes: parameters less the intercepts
lr <- 2 * (ll1 - ll0)
predicted <- max.col(P, ties.method = "first") - 1L
correct <- sum(predicted == y)
most <- max(counts)
ml_r2 <- 1 - exp(2 * (ll0 - ll1) / n)
scalars <- list(
  loglike = ll1, loglike_null = ll0, deviance = -2 * ll1, deviance_df = n - K, lr = lr,
  lr_df = d, lr_pvalue = pchisq(lr, d, lower.tail = FALSE), mcfadden = 1 - ll1 / ll0,
  mcfadden_adj = 1 - (ll1 - K) / ll0, cox_snell = ml_r2,
  cragg_uhler = ml_r2 / (1 - exp(2 * ll0 / n)), count = correct / n,
  count_adj = (correct - most) / (n - most), aic = -2 * ll1 + 2 * K,
  aic_n = (-2 * ll1 + 2 * K) / n, bic = -2 * ll1 + K * log(n), bic_prime = -lr + d * log(n),
  nobs = n, k_params = K
)
lines <- c(
  header_lines(SCRIPT, list(
    engine = versions(c("stats", "VGAM", "nnet")),
    fit = sprintf(paste(
      "vglm(family = multinomial(refLevel = 'academic'), control = vglm.control(epsilon = %g,",
      "maxit = %d, criterion = 'coefficients', half.stepsizing = FALSE)), refit from its estimates"
    ), EPSILON, MAXIT),
    convergence = sprintf("max |score| %.3g", max(abs(score))),
    model = "prog ~ ses + write, reference academic; null prog ~ 1"
  )),
  "measure,value",
  sprintf("%s,%s", names(scalars), sapply(scalars, fmt))
)
writeLines(lines, file.path(REF_DIR, "hsbdemo_fitstat.csv"))
message("wrote hsbdemo_fitstat.csv")

