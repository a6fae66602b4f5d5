# Ridge (weight decay) multinomial logit references: R nnet::multinom(decay = lambda).
#
#   Rscript tests/reference/R/nnet_decay.R
#
# multinom fits the reference-coded coefficients (the first level is the reference; its row of
# weights is masked to 0, the intercept is the weight of the model matrix's "(Intercept)"
# column and nnet's own bias units are masked to 0) by BFGS on
#     -loglik(B) + decay * sum(B^2),
# every coefficient penalised, the intercepts too, and no factor 1/2.  The script asserts both
# facts independently of nnet: fit$value equals that objective computed from the model matrix,
# and its gradient (computed here) is near 0 at the estimates.  In multilogit's convention
# (maximise loglik - alpha/2 * sum(B^2)) this is alpha = 2 * decay with penalize_intercept=True
# and l2_form="reference".
#
# Cases (data: multilogit/datasets/data/hsbdemo.csv and tests/reference/data/alligators.csv):
#   hsbdemo     prog ~ ses + write, reference academic, decay = 1
#   alligators  foodchoice ~ size + lake, frequency weights freq, reference Fish, decay = 0.5
#
# nnet's BFGS stops on reltol; at reltol = 1e-15 the gradient left is ~1e-6 (write's scale is
# ~50), so the coefficients are good to about 1e-7 relative: the tests compare at 3e-7.

suppressPackageStartupMessages(library(nnet))
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "nnet_decay.R"
engine <- versions(c("stats", "nnet"))

patsy_names <- function(r, factors) {
  r <- sub("^\\(Intercept\\)$", "Intercept", r)
  for (f in factors) r <- sub(paste0("^", f, "(.+)$"), paste0(f, "[T.\\1]"), r)
  r
}

run <- function(name, formula, data, weights, factors, decay, model_text) {
  data$.w <- weights
  fit <- multinom(formula,
    data = data, weights = .w, decay = decay, reltol = 1e-15, abstol = 1e-300,
    maxit = 10000, trace = FALSE
  )
  check(fit$convergence == 0, paste(name, "BFGS converged (reltol)"))
  X <- model.matrix(formula, data)
  y <- as.integer(data[[all.vars(formula)[1]]]) - 1L
  B <- coef(fit)[, colnames(X), drop = FALSE] # J x p, reference-coded
  eta <- cbind(0, X %*% t(B))
  P <- exp(eta - apply(eta, 1, max))
  P <- P / rowSums(P)
  keep <- weights > 0
  ll <- sum(weights[keep] * log(P[cbind(which(keep), y[keep] + 1L)]))
  objective <- -ll + decay * sum(B^2)
  check(abs(objective - fit$value) < 1e-10 * abs(fit$value),
    paste(name, "value = -loglik + decay * sum(all coefficients^2), intercepts included")
  )
  D <- sapply(seq_len(nrow(B)), function(j) as.numeric(y == j))
  grad <- t(X) %*% (weights * (D - P[, -1, drop = FALSE])) - 2 * decay * t(B)
  gmax <- max(abs(grad))
  check(gmax < 1e-4, paste(name, "gradient of the penalised log-likelihood near 0"))
  coef_m <- t(B)
  rownames(coef_m) <- patsy_names(rownames(coef_m), factors)
  se <- coef_m * NA
  info <- list(
    engine = engine,
    fit = sprintf(
      "multinom(%s, decay = %s, reltol = 1e-15, abstol = 1e-300, maxit = 10000)",
      deparse(formula), format(decay)
    ),
    convergence = sprintf(
      "BFGS convergence code %d; max |gradient of loglik - decay * sum(B^2)| %.3g",
      fit$convergence, gmax
    ),
    model = model_text,
    objective = "-loglik + decay * sum(B^2) over all reference-coded coefficients (intercepts too)"
  )
  write_estimates(name, SCRIPT, info, coef_m, se, list(
    decay = decay, value = fit$value, llf = ll
  ))
}

hsb <- load_hsbdemo()
run("hsbdemo_l2_nnet", prog ~ ses + write, hsb, rep(1, nrow(hsb)), c("ses"), 1,
  "prog ~ ses + write, reference academic"
)

alligators <- read.csv(file.path(REF_DIR, "data", "alligators.csv"))
alligators$foodchoice <- factor(alligators$foodchoice,
  levels = c("Fish", "Invertebrate", "Reptile", "Bird", "Other")
)
alligators$lake <- factor(alligators$lake, levels = c("Hancock", "Oklawaha", "Trafford", "George"))
alligators$size <- factor(alligators$size, levels = c("<=2.3", ">2.3"))
run("alligators_l2_nnet", foodchoice ~ size + lake, alligators, alligators$freq,
  c("size", "lake"), 0.5, "foodchoice ~ size + lake, weights freq, reference Fish"
)
