# Profile-likelihood confidence intervals, computed exactly: for each coefficient b_r, the two
# roots of the signed root statistic
#
#   z(t) = sign(t - b_hat) sqrt(2 (l(b_hat) - l_p(t))),   l_p(t) = max over b with b_r = t of l(b),
#
# at z = -q and z = +q, q = qnorm(1 - alpha / 2) (so that z^2 = q^2 is the chi-square(1) quantile),
# found by uniroot(tol = 1e-13) after bracketing by stepping out from the Wald bound.  l_p(t) is
# a constrained maximisation to a relative Newton step below 1e-13:
#
#   K = 2, maximum likelihood   glm(family = binomial) with b_r t x_r as an offset (R's IRLS),
#                               cross-checked against the Newton solver below
#   K = 3, maximum likelihood   Newton on the free coefficients with the exact information
#                               (mnl_information of common.R), cross-checked at every bound
#                               against VGAM::vglm with the coefficient as an offset of its
#                               linear predictor (its column removed from that equation by a
#                               constraint matrix)
#   K = 2, Firth (logistf)      the penalised log-likelihood l + 1/2 log det(X'WX) with the
#                               information of the *full* model (logistf's profile penalised
#                               likelihood, Heinze & Schemper 2002), maximised over the free
#                               coefficients by Fisher scoring on the penalised score
#                               X'(y - p + h (1/2 - p)) (h the hat values of the full model);
#                               checked stationary by central differences
#   K = 3, Firth                the same for the multinomial logit, with the exact gradient of
#                               log det I (see its section); estimates = brmultinom AS_mean
#   K = 2, separated ML         endometrial: NV = 1 implies HG = 1, the ML estimate of NV is
#                               +Inf and l(b_hat) is the supremum, attained as b_NV -> Inf where
#                               those 13 rows are fitted perfectly: the likelihood of the rows
#                               with NV = 0 (glm on them).  The profile of NV is that of glm
#                               with NV t as an offset on all rows; its upper bound is +Inf; the
#                               profiles of the others are those of glm on the rows NV = 0.
#   K = 5, separated ML         alligators with weights round(freq / 3): two coefficients
#                               diverge to -Inf; the supremum and the profiles hold them at
#                               -200 (the supremum checked unchanged at -400), Newton as for K = 3.
#   K = 2, quasi-separated      a continuous covariate separates but for ties: the limit is flat
#                               along a combination of two coefficients (see its section).
#
# MASS's confint() on the admissions glm is written too (profile_admissions_mass.csv): it interpolates a spline
# through a grid of profile points, accurate to about 1e-4 relative, so the tests compare with it
# at that accuracy and with the exact roots at 1e-8.
#
#   Rscript tests/reference/R/profile.R
#
# Output (tests/reference/profile_*.csv): header lines, then level,equation,term,lower,upper.
# Sanity check: logistf's published 95% profile penalised likelihood interval for NV on the
# endometrial data (Heinze & Schemper 2002) is (0.61, 7.85); this script gives (0.6097, 7.8546).

suppressPackageStartupMessages({
  library(MASS)
  library(VGAM)
  library(brglm2)
})
this_file <- sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))
source(file.path(dirname(this_file), "common.R"))

SCRIPT <- "profile.R"
TOL <- 1e-13
ROOT_TOL <- 1e-13
engine <- versions(c("stats", "MASS", "VGAM", "brglm2"))

# --- constrained maximisers ------------------------------------------------------------------

# Multinomial logit (J non-reference equations, y in 0..J, 0 the reference): log-likelihood,
# score (flat, outcome-major) and information at B (J x p).
mnl_eval <- function(B, X, y, f) {
  eta <- cbind(0, X %*% t(B))
  m <- apply(eta, 1, max)
  E <- exp(eta - m)
  P <- E / rowSums(E)
  ll <- sum(f * (eta[cbind(seq_along(y), y + 1L)] - m - log(rowSums(E))))
  J <- nrow(B)
  D <- sapply(seq_len(J), function(j) as.numeric(y == j))
  R <- matrix(f, length(y), J) * (matrix(D, ncol = J) - P[, -1, drop = FALSE])
  score <- as.vector(crossprod(X, R)) # column j = equation j: outcome-major when vectorised
  list(ll = ll, score = score, info = mnl_information(X, P[, -1, drop = FALSE], f))
}

# Newton on the coordinates not in `pinned` (flat indices), with step-halving.
mnl_newton <- function(B, X, y, f, pinned) {
  b <- as.vector(t(B))
  free <- setdiff(seq_along(b), pinned)
  J <- nrow(B)
  to_B <- function(b) matrix(b, J, byrow = TRUE)
  cur <- mnl_eval(to_B(b), X, y, f)
  for (it in 1:200) {
    step <- solve(cur$info[free, free], cur$score[free])
    if (max(abs(step) / (1 + abs(b[free]))) < TOL) {
      return(list(ll = cur$ll, b = b, iter = it))
    }
    s <- 1
    repeat {
      nb <- b
      nb[free] <- b[free] + s * step
      new <- mnl_eval(to_B(nb), X, y, f)
      if (new$ll >= cur$ll - 1e-12 * abs(cur$ll) || s < 1e-10) break
      s <- s / 2
    }
    b <- nb
    cur <- new
  }
  stop("mnl_newton did not converge")
}

# Firth's penalised log-likelihood of the binary logit, l + 1/2 log det(X'WX), with all of X in
# the information; maximised over the coordinates not in `pinned` by Fisher scoring (logistf).
firth_eval <- function(b, X, y) {
  eta <- as.vector(X %*% b)
  p <- plogis(eta)
  w <- p * (1 - p)
  I <- crossprod(X, w * X)
  ll <- sum(y * plogis(eta, log.p = TRUE) + (1 - y) * plogis(-eta, log.p = TRUE))
  Ci <- solve(I)
  h <- rowSums((X %*% Ci) * X) * w
  list(
    pll = ll + 0.5 * as.numeric(determinant(I, logarithm = TRUE)$modulus),
    score = as.vector(crossprod(X, y - p + h * (0.5 - p))), info = I
  )
}

firth_scoring <- function(b, X, y, pinned) {
  free <- setdiff(seq_along(b), pinned)
  cur <- firth_eval(b, X, y)
  for (it in 1:1000) {
    step <- solve(cur$info[free, free], cur$score[free])
    if (max(abs(step) / (1 + abs(b[free]))) < TOL) {
      return(list(ll = cur$pll, b = b, iter = it))
    }
    # Step-halving on the penalised log-likelihood, as logistf: a full scoring step from far
    # off can leave the region where X'WX is numerically nonsingular.
    s <- 1
    repeat {
      nb <- b
      nb[free] <- b[free] + s * step
      new <- tryCatch(firth_eval(nb, X, y), error = function(e) list(pll = -Inf))
      if (new$pll >= cur$pll - 1e-12 * abs(cur$pll) || s < 1e-10) break
      s <- s / 2
    }
    b <- nb
    cur <- new
  }
  stop("firth_scoring did not converge")
}

# glm with coefficient r fixed at t (an offset): the maximised log-likelihood.
glm_fixed <- function(X, y, r, t, start = NULL) {
  ctl <- glm.control(epsilon = 1e-15, maxit = 200)
  Xf <- X[, -r, drop = FALSE]
  off <- t * X[, r]
  # From glm's own starting values unless given: IRLS from a start far from the constrained
  # optimum can diverge (glm.fit halves steps only when the deviance is infinite).
  fit <- glm.fit(Xf, y, family = binomial(), offset = off, control = ctl, start = start)
  fit <- glm.fit(Xf, y, family = binomial(), offset = off, control = ctl, start = coef(fit))
  if (!fit$converged) stop("glm with an offset did not converge at t = ", t)
  eta <- as.vector(Xf %*% coef(fit)) + off
  list(ll = sum(y * plogis(eta, log.p = TRUE) + (1 - y) * plogis(-eta, log.p = TRUE)))
}

# --- the root search -------------------------------------------------------------------------

# Signed-root roots for coefficient index r (flat), given prof(t) = l_p(t) and the maximum.
profile_bounds <- function(prof, lmax, bhat, se, q, sides = c(-1, 1)) {
  z <- function(t) sign(t - bhat) * sqrt(max(2 * (lmax - prof(t)), 0))
  out <- c(-Inf, Inf)
  for (side in sides) {
    a <- bhat
    d <- q * se
    repeat {
      t <- bhat + side * d
      if (side * z(t) >= q) break
      a <- t
      d <- 2 * d
      if (d > 1e6 * se) stop("no bracket")
    }
    root <- uniroot(function(u) z(u) - side * q, sort(c(a, t)), tol = ROOT_TOL, maxiter = 1000)
    out[(side + 3) / 2] <- root$root
  }
  out
}

LEVELS <- c(0.95, 0.9)
rows_of <- function(level, eq, term, lo, hi) {
  sprintf("%s,%s,%s,%s,%s", fmt(level), eq, term, fmt(lo), fmt(hi))
}
write_intervals <- function(name, info, rows) {
  path <- file.path(REF_DIR, paste0(name, ".csv"))
  writeLines(c(header_lines(SCRIPT, info), "level,equation,term,lower,upper", rows), path)
  message("wrote ", path)
}

# --- K = 2: admissions, admit ~ gre + gpa + rank -----------------------------------------------
adm <- load_admissions()
fit <- glm(admit ~ gre + gpa + rank, binomial, adm, control = glm.control(1e-15, 100))
fit <- glm(admit ~ gre + gpa + rank, binomial, adm,
  control = glm.control(1e-15, 100),
  start = coef(fit)
)
X <- model.matrix(fit)
y <- adm$admit
terms <- sub("^rank([0-9])$", "C(rank)[T.\\1]", sub("^\\(Intercept\\)$", "Intercept", colnames(X)))
lmax <- as.numeric(logLik(fit))
bhat <- coef(fit)
se <- sqrt(diag(vcov(fit)))
rows <- character()
for (level in LEVELS) {
  q <- qnorm(1 - (1 - level) / 2)
  for (r in seq_along(bhat)) {
    b <- profile_bounds(function(t) glm_fixed(X, y, r, t)$ll, lmax, bhat[r], se[r], q)
    # The same roots by the Newton solver used for K = 3.
    for (t in b) {
      B <- matrix(replace(bhat, r, t), 1)
      nl <- mnl_newton(B, X, y, rep(1, length(y)), r)$ll
      if (abs(nl - glm_fixed(X, y, r, t)$ll) > 1e-10) stop("glm offset != Newton")
    }
    rows <- c(rows, rows_of(level, "1", terms[r], b[1], b[2]))
  }
}
write_intervals("profile_admissions", list(
  engine = engine,
  fit = "glm(admit ~ gre + gpa + rank, binomial, control = glm.control(1e-15, 100)), refit",
  profile = "glm.fit with b_r x_r as offset (epsilon 1e-15, refit); uniroot(tol = 1e-13)",
  model = "admit ~ gre + gpa + C(rank), rank 1 the base; equation 1 = admit"
), rows)

# MASS's profile intervals (its default grid and spline).
rows <- character()
for (level in LEVELS) {
  ci <- suppressMessages(confint(fit, level = level))
  for (r in seq_along(bhat)) rows <- c(rows, rows_of(level, "1", terms[r], ci[r, 1], ci[r, 2]))
}
write_intervals("profile_admissions_mass", list(
  engine = engine,
  fit = "as profile_admissions.csv",
  profile = "MASS:::confint.glm(fit, level = level) (profile() grid and spline interpolation)",
  model = "admit ~ gre + gpa + C(rank), rank 1 the base; equation 1 = admit"
), rows)

# --- K = 3: hsbdemo, prog ~ ses + write ---------------------------------------------------------
hsb <- load_hsbdemo()
vfit <- vglm(prog ~ ses + write, multinomial(refLevel = "academic"), hsb,
  control = vglm.control(epsilon = 1e-15, maxit = 100, criterion = "coefficients",
    half.stepsizing = FALSE)
)
X <- model.matrix(prog ~ ses + write, hsb)
y <- as.integer(hsb$prog) - 1L
f <- rep(1, length(y))
p <- ncol(X)
B0 <- matrix(0, 2, p)
full <- mnl_newton(B0, X, y, f, integer())
lmax <- full$ll
check(abs(lmax - as.numeric(logLik(vfit))) < 1e-9, "Newton MLE = vglm MLE")
bhat <- full$b
V <- solve(mnl_eval(matrix(bhat, 2, byrow = TRUE), X, y, f)$info)
se <- sqrt(diag(V))
terms <- sub("^ses(.+)$", "ses[T.\\1]", sub("^\\(Intercept\\)$", "Intercept", colnames(X)))
eqs <- c("general", "vocation")

# vglm with coefficient (eq, column k) fixed at t: that column leaves equation eq through a
# constraint matrix and enters its linear predictor as an offset.
vglm_fixed <- function(eq, k, t) {
  d <- data.frame(X[, -1])
  names(d) <- paste0("x", seq_len(p - 1))
  d$prog <- hsb$prog
  cons <- list("(Intercept)" = diag(2))
  for (j in seq_len(p - 1)) cons[[paste0("x", j)]] <- diag(2)
  name <- if (k == 1) "(Intercept)" else paste0("x", k - 1)
  cons[[name]] <- diag(2)[, -eq, drop = FALSE]
  off <- matrix(0, nrow(d), 2)
  off[, eq] <- t * X[, k]
  form <- as.formula(paste("prog ~", paste(paste0("x", seq_len(p - 1)), collapse = " + ")))
  ctl <- vglm.control(epsilon = 1e-15, maxit = 200, criterion = "coefficients",
    half.stepsizing = FALSE)
  v <- vglm(form, multinomial(refLevel = "academic"), d, constraints = cons, offset = off,
    control = ctl)
  as.numeric(logLik(v))
}

rows <- character()
for (level in LEVELS) {
  q <- qnorm(1 - (1 - level) / 2)
  for (r in seq_along(bhat)) {
    B <- matrix(bhat, 2, byrow = TRUE)
    prof <- function(t) {
      b <- replace(bhat, r, t)
      mnl_newton(matrix(b, 2, byrow = TRUE), X, y, f, r)$ll
    }
    b <- profile_bounds(prof, lmax, bhat[r], se[r], q)
    eq <- (r - 1) %/% p + 1
    k <- (r - 1) %% p + 1
    for (t in b) check(abs(prof(t) - vglm_fixed(eq, k, t)) < 1e-9, "Newton profile = vglm")
    rows <- c(rows, rows_of(level, eqs[eq], terms[k], b[1], b[2]))
  }
}
write_intervals("profile_hsbdemo", list(
  engine = engine,
  fit = "Newton on the multinomial log-likelihood (step < 1e-13 relative); = vglm's MLE",
  profile = paste(
    "Newton on the free coefficients; uniroot(tol = 1e-13); each bound's l_p checked against",
    "vglm(multinomial, constraints removing the column from one equation, offset) to 1e-9"
  ),
  model = "prog ~ ses + write, reference academic, ses levels low < middle < high"
), rows)

# --- K = 2: endometrial, HG ~ NV + PI + EH: Firth and separated ML ------------------------------
endo <- read.csv(file.path(REF_DIR, "data", "endometrial.csv"))
X <- model.matrix(HG ~ NV + PI + EH, endo)
y <- endo$HG
terms <- sub("^\\(Intercept\\)$", "Intercept", colnames(X))
br <- glm(HG ~ NV + PI + EH, binomial, endo,
  method = "brglmFit", epsilon = 1e-14, maxit = 1000, type = "AS_mean"
)
full <- firth_scoring(rep(0, ncol(X)), X, y, integer())
check(max(abs(full$b - coef(br))) < 1e-9, "Firth scoring = brglm2 AS_mean")
lmax <- full$ll
bhat <- full$b
se <- sqrt(diag(solve(firth_eval(bhat, X, y)$info)))
rows <- character()
for (level in LEVELS) {
  q <- qnorm(1 - (1 - level) / 2)
  for (r in seq_along(bhat)) {
    prof <- function(t) firth_scoring(replace(bhat, r, t), X, y, r)$ll
    b <- profile_bounds(prof, lmax, bhat[r], se[r], q)
    for (t in b) {
      at <- firth_scoring(replace(bhat, r, t), X, y, r)$b
      g <- sapply(setdiff(seq_along(at), r), function(k) {
        e <- replace(numeric(length(at)), k, 1e-5)
        (firth_eval(at + e, X, y)$pll - firth_eval(at - e, X, y)$pll) / 2e-5
      })
      check(max(abs(g)) < 1e-6, "constrained penalised maximum stationary")
    }
    rows <- c(rows, rows_of(level, "1", terms[r], b[1], b[2]))
  }
}
write_intervals("profile_endometrial_firth", list(
  engine = engine,
  fit = "Fisher scoring on Firth's penalised score (step < 1e-13 relative); = brglm2 AS_mean",
  profile = paste(
    "penalised log-likelihood l + 1/2 log det I(b) of the full model (logistf), maximised",
    "over the free coefficients by Fisher scoring; uniroot(tol = 1e-13)"
  ),
  model = "HG ~ NV + PI + EH, reference 0"
), rows)

# Separated ML: the supremum is the likelihood of the rows with NV = 0 (NV = 1 rows all HG = 1).
check(all(y[endo$NV == 1] == 1), "NV = 1 implies HG = 1 (quasi-separation)")
keep <- endo$NV == 0
Xs <- X[keep, -2]
ys <- y[keep]
sub <- glm.fit(Xs, ys, family = binomial(), control = glm.control(1e-15, 200))
sub <- glm.fit(Xs, ys, family = binomial(), control = glm.control(1e-15, 200), start = coef(sub))
eta <- as.vector(Xs %*% coef(sub))
lmax <- sum(ys * plogis(eta, log.p = TRUE) + (1 - ys) * plogis(-eta, log.p = TRUE))
Vs <- solve(crossprod(Xs, (plogis(eta) * plogis(-eta)) * Xs))
rows <- character()
for (level in LEVELS) {
  q <- qnorm(1 - (1 - level) / 2)
  # NV: offset on all rows; the upper bound is +Inf (l_p(t) -> lmax as t -> Inf).
  prof <- function(t) glm_fixed(X, y, 2, t, start = coef(sub))$ll
  check(abs(prof(40) - lmax) < 1e-12, "l_p(NV = 40) = supremum")
  z <- function(t) sign(t - 40) * sqrt(max(2 * (lmax - prof(t)), 0))
  lo <- 40 - 1
  while (z(lo) > -q) lo <- lo - 2
  root <- uniroot(function(u) z(u) + q, c(lo, lo + 2), tol = ROOT_TOL, maxiter = 1000)$root
  rows <- c(rows, rows_of(level, "1", "NV", root, Inf))
  # The others: glm on the rows NV = 0.
  others <- c(1, 3, 4)
  for (j in seq_along(others)) {
    prof <- function(t) glm_fixed(Xs, ys, j, t)$ll
    b <- profile_bounds(prof, lmax, coef(sub)[j], sqrt(Vs[j, j]), q)
    rows <- c(rows, rows_of(level, "1", terms[others[j]], b[1], b[2]))
  }
}
write_intervals("profile_endometrial_ml", list(
  engine = engine,
  fit = "maximum likelihood: b_NV = +Inf; the others maximise the likelihood of the rows NV = 0",
  profile = paste(
    "NV: glm.fit with NV t as offset on all rows; others: glm.fit on the rows NV = 0 with",
    "b_r x_r as offset; uniroot(tol = 1e-13)"
  ),
  model = "HG ~ NV + PI + EH, reference 0 (quasi-separated by NV)"
), rows)

# --- K = 5, separated ML: alligators with weights round(freq / 3) -------------------------------
# No reptile was caught in lake George and no bird in lake Oklawaha (at these weights), so the
# coefficients (Reptile, lake George) and (Bird, lake Oklawaha) diverge to -Inf and the
# likelihood's supremum is approached with both far out: it is computed here with both held at
# -200 (and checked unchanged at -400), the others maximised by Newton.  The profile of one of
# them holds the other at -200 too; of any other coefficient, both.
all <- read.csv(file.path(REF_DIR, "data", "alligators.csv"))
all$foodchoice <- factor(all$foodchoice, levels = c("Fish", "Invertebrate", "Reptile", "Bird", "Other"))
all$lake <- factor(all$lake, levels = c("Hancock", "Oklawaha", "Trafford", "George"))
all$size <- factor(all$size, levels = c("<=2.3", ">2.3"))
X <- model.matrix(~ size + lake, all)
y <- as.integer(all$foodchoice) - 1L
f <- round(all$freq / 3)
check(sum(f[y == 2 & all$lake == "George"]) == 0, "no reptile in lake George")
check(sum(f[y == 3 & all$lake == "Oklawaha"]) == 0, "no bird in lake Oklawaha")
J <- 4
p <- ncol(X)
flag <- c(p + which(colnames(X) == "lakeGeorge"), 2 * p + which(colnames(X) == "lakeOklawaha"))
FAR <- -200
at_limit <- function(b, far = FAR, which = flag) replace(b, which, far)
solve_at <- function(b, pins) mnl_newton(matrix(b, J, byrow = TRUE), X, y, f, pins)
top <- solve_at(at_limit(numeric(J * p)), flag)
check(abs(solve_at(at_limit(top$b, 2 * FAR), flag)$ll - top$ll) < 1e-12, "supremum reached")
lmax <- top$ll
bhat <- top$b
free <- setdiff(seq_len(J * p), flag)
info <- mnl_eval(matrix(bhat, J, byrow = TRUE), X, y, f)$info
se <- rep(NA, J * p)
se[free] <- sqrt(diag(solve(info[free, free])))
terms <- sub("^(size|lake)(.+)$", "\\1[T.\\2]", sub("^\\(Intercept\\)$", "Intercept", colnames(X)))
eqs <- c("Invertebrate", "Reptile", "Bird", "Other")
rows <- character()
for (level in LEVELS) {
  q <- qnorm(1 - (1 - level) / 2)
  for (r in seq_len(J * p)) {
    if (r %in% flag) {
      other <- setdiff(flag, r)
      prof <- function(t) solve_at(at_limit(replace(bhat, r, t), FAR, other), c(r, other))$ll
      z <- function(t) sqrt(max(2 * (lmax - prof(t)), 0)) # every finite t is above -Inf
      hi <- -5
      while (z(hi) < q) hi <- hi + 2
      b <- c(-Inf, uniroot(function(u) z(u) - q, c(hi - 2, hi), tol = ROOT_TOL, maxiter = 1000)$root)
    } else {
      prof <- function(t) solve_at(replace(bhat, r, t), c(flag, r))$ll
      b <- profile_bounds(prof, lmax, bhat[r], se[r], q)
    }
    eq <- (r - 1) %/% p + 1
    k <- (r - 1) %% p + 1
    rows <- c(rows, rows_of(level, eqs[eq], terms[k], b[1], b[2]))
  }
}
write_intervals("profile_alligators3_ml", list(
  engine = engine,
  fit = paste(
    "maximum likelihood: (Reptile, lake George) and (Bird, lake Oklawaha) = -Inf; the others",
    "maximise the likelihood with both held at -200 (unchanged at -400)"
  ),
  profile = "Newton on the free coefficients, the diverging ones at -200; uniroot(tol = 1e-13)",
  model = "foodchoice ~ size + lake, weights round(freq / 3), reference Fish"
), rows)

# --- K = 2, quasi-separated by a continuous covariate: the limit is flat along a combination ----
# y = 1 exactly when x > 0.3, but for 14 rows at x = 0.3 with both outcomes: the recession
# direction is (Intercept, x) = (-0.3, 1), and in the limit only the rows at x = 0.3 count,
# through Intercept + 0.3 x and z.  The supremum and the profile of z are those of glm on those
# rows; the profiles of Intercept and x (finite on one side only) hold the coefficient on all
# rows (Newton, as for K = 3).  The data are written beside the results.
set.seed(20261202)
n <- 50
x <- round(runif(n, -1, 2), 2)
x[x == 0.3] <- 0.31
quasi <- data.frame(x = x, z = round(rnorm(n), 2), y = as.integer(x > 0.3))
ties <- data.frame(x = 0.3, z = round(rnorm(14), 2), y = rbinom(14, 1, 0.5))
quasi <- rbind(quasi, ties)
write.csv(quasi, file.path(REF_DIR, "data", "quasi_continuous.csv"), row.names = FALSE)
on_tie <- quasi$x == 0.3
check(all(c(0, 1) %in% quasi$y[on_tie]), "both outcomes at x = 0.3")
check(any(quasi$y == 0 & quasi$x > 0 & quasi$x < 0.3), "some y = 0 at 0 < x < 0.3")
X <- model.matrix(~ x + z, quasi)
y <- quasi$y
Xt <- X[on_tie, c(1, 3)]
yt <- y[on_tie]
tie_fit <- glm.fit(Xt, yt, family = binomial(), control = glm.control(1e-15, 200))
eta <- as.vector(Xt %*% coef(tie_fit))
lmax <- sum(yt * plogis(eta, log.p = TRUE) + (1 - yt) * plogis(-eta, log.p = TRUE))
se_z <- sqrt(solve(crossprod(Xt, (plogis(eta) * plogis(-eta)) * Xt))[2, 2])
f1 <- rep(1, length(y))
# glm.fit, even from a start, fails at the offsets of thousands these profiles reach (IRLS
# without step-halving); the Newton solver with step-halving does not, started where the rows
# at x = 0.3 keep their fit.
check(abs(mnl_newton(matrix(c(-10, 10 / 0.3, 0), 1), X, y, f1, 1)$ll -
  glm_fixed(X, y, 1, -10)$ll) < 1e-10, "Newton = glm with an offset at Intercept = -10")
rows <- character()
for (level in LEVELS) {
  q <- qnorm(1 - (1 - level) / 2)
  # Intercept: -Inf below; above, every finite t has z(t) > 0 (the limit is at -Inf).
  prof <- function(t) mnl_newton(matrix(c(t, -t / 0.3, 0), 1), X, y, f1, 1)$ll
  zi <- function(t) sqrt(max(2 * (lmax - prof(t)), 0))
  hi <- -1000
  check(zi(hi) < q, "Intercept profile inside at -1000")
  while (zi(hi) < q) hi <- hi / 2
  up <- uniroot(function(u) zi(u) - q, c(2 * hi, hi), tol = ROOT_TOL, maxiter = 1000)$root
  rows <- c(rows, rows_of(level, "1", "Intercept", -Inf, up))
  # x: +Inf above; below, every finite t has z(t) < 0.
  prof <- function(t) mnl_newton(matrix(c(-0.3 * t, t, 0), 1), X, y, f1, 2)$ll
  zx <- function(t) -sqrt(max(2 * (lmax - prof(t)), 0))
  lo <- 3000
  check(zx(lo) > -q, "x profile inside at 3000")
  while (zx(lo) > -q) lo <- lo / 2
  down <- uniroot(function(u) zx(u) + q, c(lo, 2 * lo), tol = ROOT_TOL, maxiter = 1000)$root
  rows <- c(rows, rows_of(level, "1", "x", down, Inf))
  # z: the profile of the limit, glm on the rows at x = 0.3.
  prof <- function(t) glm_fixed(Xt, yt, 2, t)$ll
  b <- profile_bounds(prof, lmax, coef(tie_fit)[2], se_z, q)
  rows <- c(rows, rows_of(level, "1", "z", b[1], b[2]))
}
write_intervals("profile_quasi_continuous_ml", list(
  engine = engine,
  fit = paste(
    "maximum likelihood: (Intercept, x) diverge along (-0.3, 1); supremum = glm(y ~ z) on",
    "the rows at x = 0.3"
  ),
  profile = paste(
    "Intercept, x: Newton on the other coefficients, all rows; z: glm.fit on the rows",
    "at x = 0.3 with z as offset; uniroot(tol = 1e-13)"
  ),
  model = "y ~ x + z (data/quasi_continuous.csv, written here), reference 0"
), rows)

# --- K = 3, Firth: hsbdemo, prog ~ ses + write ---------------------------------------------------
# The penalised log-likelihood l + 1/2 log det I of the multinomial logit, I the information of
# the full model, maximised over the free coefficients by scoring with the likelihood's
# information on the penalised score g + 1/2 d log det I / d beta.  That gradient is exact:
# d I / d eta_ij is the rows' x x' times dW_i / d eta_j, W_i = diag(P_i) - P_i P_i'; it is
# checked against central differences of the penalised log-likelihood.
mnl_penalised <- function(b, X, y, f, J) {
  B <- matrix(b, J, byrow = TRUE)
  ev <- mnl_eval(B, X, y, f)
  eta <- cbind(0, X %*% t(B))
  E <- exp(eta - apply(eta, 1, max))
  P <- (E / rowSums(E))[, -1, drop = FALSE]
  Ci <- solve(ev$info)
  p <- ncol(X)
  blk <- function(a) (a - 1) * p + seq_len(p)
  # M[i, a, b] = x_i' C_ab x_i
  M <- array(0, c(nrow(X), J, J))
  for (a in seq_len(J)) for (c in seq_len(J)) M[, a, c] <- rowSums((X %*% Ci[blk(a), blk(c)]) * X)
  grad <- numeric(J * p)
  for (j in seq_len(J)) {
    dP <- P * (outer(rep(1, nrow(X)), seq_len(J) == j) - P[, j]) # dP_a / d eta_j
    h <- numeric(nrow(X))
    for (a in seq_len(J)) {
      for (c in seq_len(J)) {
        dW <- (a == c) * dP[, a] - dP[, a] * P[, c] - P[, a] * dP[, c]
        h <- h + dW * M[, a, c]
      }
    }
    grad[blk(j)] <- crossprod(X, f * h)
  }
  list(
    pll = ev$ll + 0.5 * as.numeric(determinant(ev$info, logarithm = TRUE)$modulus),
    score = ev$score + 0.5 * grad, info = ev$info
  )
}

mnl_firth <- function(b, X, y, f, J, pinned) {
  free <- setdiff(seq_along(b), pinned)
  cur <- mnl_penalised(b, X, y, f, J)
  for (it in 1:1000) {
    step <- solve(cur$info[free, free], cur$score[free])
    if (max(abs(step) / (1 + abs(b[free]))) < TOL) {
      return(list(ll = cur$pll, b = b, iter = it))
    }
    s <- 1
    repeat {
      nb <- b
      nb[free] <- b[free] + s * step
      new <- tryCatch(mnl_penalised(nb, X, y, f, J), error = function(e) list(pll = -Inf))
      if (new$pll >= cur$pll - 1e-12 * abs(cur$pll) || s < 1e-10) break
      s <- s / 2
    }
    b <- nb
    cur <- new
  }
  stop("mnl_firth did not converge")
}

X <- model.matrix(prog ~ ses + write, hsb)
y <- as.integer(hsb$prog) - 1L
f <- rep(1, length(y))
p <- ncol(X)
full <- mnl_firth(numeric(2 * p), X, y, f, 2, integer())
brm <- brmultinom(prog ~ ses + write, data = hsb, ref = 1,
  control = list(epsilon = 1e-13, maxit = 1000, type = "AS_mean"))
check(max(abs(full$b - as.vector(t(coef(brm))))) < 1e-8, "Firth scoring = brmultinom AS_mean")
# Central differences with steps scaled to each column (write is in the tens).
hs <- rep(1e-5 / apply(abs(X), 2, max), 2)
num <- sapply(seq_along(full$b), function(k) {
  e <- replace(numeric(length(full$b)), k, hs[k])
  (mnl_penalised(full$b + e, X, y, f, 2)$pll - mnl_penalised(full$b - e, X, y, f, 2)$pll) /
    (2 * hs[k])
})
check(max(abs(num)) < 1e-6, "penalised score 0 at the estimates (central differences)")
at <- full$b + 0.1
ana <- mnl_penalised(at, X, y, f, 2)$score
num <- sapply(seq_along(at), function(k) {
  e <- replace(numeric(length(at)), k, hs[k])
  (mnl_penalised(at + e, X, y, f, 2)$pll - mnl_penalised(at - e, X, y, f, 2)$pll) / (2 * hs[k])
})
check(max(abs(ana - num) / (1 + abs(num))) < 1e-6, "exact penalised score = central differences")
lmax <- full$ll
bhat <- full$b
se <- sqrt(diag(solve(mnl_eval(matrix(bhat, 2, byrow = TRUE), X, y, f)$info)))
terms <- sub("^ses(.+)$", "ses[T.\\1]", sub("^\\(Intercept\\)$", "Intercept", colnames(X)))
eqs <- c("general", "vocation")
rows <- character()
level <- 0.95
q <- qnorm(1 - (1 - level) / 2)
for (r in seq_along(bhat)) {
  prof <- function(t) mnl_firth(replace(bhat, r, t), X, y, f, 2, r)$ll
  b <- profile_bounds(prof, lmax, bhat[r], se[r], q)
  eq <- (r - 1) %/% p + 1
  k <- (r - 1) %% p + 1
  rows <- c(rows, rows_of(level, eqs[eq], terms[k], b[1], b[2]))
}
write_intervals("profile_hsbdemo_firth", list(
  engine = engine,
  fit = "scoring on the penalised score (step < 1e-13 relative); = brmultinom(type = 'AS_mean')",
  profile = paste(
    "penalised log-likelihood l + 1/2 log det I(b) of the full model, maximised over the free",
    "coefficients by scoring with the exact penalised score; uniroot(tol = 1e-13)"
  ),
  model = "prog ~ ses + write, reference academic, ses levels low < middle < high"
), rows)
