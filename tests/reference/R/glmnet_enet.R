# Elastic-net and lasso logit references (K = 2): R glmnet::glmnet(family = "binomial").
#
#   Rscript tests/reference/R/glmnet_enet.R
#
# glmnet minimises, with the intercept unpenalised and standardize = FALSE,
#     -loglik(b) / n + lambda * ((1 - a) / 2 * sum(b^2) + a * sum(|b|)),
# so in multilogit's fit_regularized (no 1/n) this is method = "elastic_net" with
# alpha = n * lambda on every slope, 0 on the intercept, and L1_wt = a.  The script checks,
# independently of glmnet, the optimality conditions at its solution from the model matrix:
# the gradient of the smooth part equals lambda * a * sign(b) where b != 0 and is at most
# lambda * a in size where b = 0, to 1e-10 (per observation; with gre in the hundreds this
# leaves the coefficients ~1e-10 relative from the optimum).
#
# Data: multilogit/datasets/data/admissions.csv, admit ~ gre + gpa + rank (rank a factor, 1 the
# base level), n = 400.  Cases:
#   admissions_enet_glmnet_a05   lambda = 0.01, a = 0.5 (no zeros)
#   admissions_enet_glmnet_a09   lambda = 0.02, a = 0.9 (rank2 exactly 0)
#   admissions_lasso_glmnet      lambda = 0.005, a = 1 (the lasso)

suppressPackageStartupMessages(library(glmnet))
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "glmnet_enet.R"
engine <- versions(c("stats", "glmnet"))
df <- load_admissions()
X <- model.matrix(~ gre + gpa + rank, df)
n <- nrow(X)
names_patsy <- c("Intercept", "gre", "gpa", "C(rank)[T.2]", "C(rank)[T.3]", "C(rank)[T.4]")

run <- function(name, lambda, a) {
  fit <- glmnet(X[, -1], df$admit,
    family = "binomial", alpha = a, lambda = lambda,
    standardize = FALSE, thresh = 1e-20, maxit = 1e7
  )
  b <- c(fit$a0, as.vector(fit$beta))
  p <- 1 / (1 + exp(-as.vector(X %*% b)))
  g <- as.vector(t(X) %*% (df$admit - p)) / n - lambda * (1 - a) * c(0, b[-1])
  pen <- c(FALSE, rep(TRUE, length(b) - 1))
  nz <- pen & b != 0
  kkt_nonzero <- max(abs(g[nz] - lambda * a * sign(b[nz])))
  kkt_zero <- if (any(pen & b == 0)) max(abs(g[pen & b == 0])) - lambda * a else -Inf
  check(kkt_nonzero < 1e-10 && abs(g[1]) < 1e-10 && kkt_zero <= 1e-15,
    paste(name, "optimality conditions")
  )
  ll <- sum(df$admit * log(p) + (1 - df$admit) * log(1 - p))
  coef_m <- matrix(b, ncol = 1, dimnames = list(names_patsy, "1"))
  info <- list(
    engine = engine,
    fit = sprintf(
      paste(
        "glmnet(x, admit, family = 'binomial', alpha = %s, lambda = %s, standardize = FALSE,",
        "thresh = 1e-20, maxit = 1e7)"
      ),
      format(a), format(lambda)
    ),
    convergence = sprintf(
      paste(
        "max |score/n - lambda (1-a) b - lambda a sign(b)| on nonzero slopes %.3g;",
        "|score/n| intercept %.3g; zeros: max |score/n| - lambda a = %.3g"
      ),
      kkt_nonzero, abs(g[1]), kkt_zero
    ),
    model = "admit ~ gre + gpa + C(rank), rank 1 the base, binary logit (equation 1)",
    objective = "-loglik/n + lambda ((1 - a)/2 sum(b^2) + a sum|b|), intercept unpenalised"
  )
  write_estimates(name, SCRIPT, info, coef_m, coef_m * NA, list(
    lambda = lambda, a = a, n = n, llf = ll
  ))
}

run("admissions_enet_glmnet_a05", 0.01, 0.5)
run("admissions_enet_glmnet_a09", 0.02, 0.9)
run("admissions_lasso_glmnet", 0.005, 1)
