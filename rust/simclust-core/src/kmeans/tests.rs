use super::*;
use proptest::prelude::*;

/// Uniform noise in [-0.5, 0.5).
fn noise(len: usize, seed: u64) -> Vec<f32> {
    crate::testdata::uniform(len, seed, -0.5)
}

/// `n` rows around `c` random centres (spread `spread`), offset by `shift`;
/// returns the rows and the true blob of each.
fn blobs(
    n: usize,
    d: usize,
    c: usize,
    spread: f32,
    shift: f32,
    seed: u64,
) -> (Vec<f32>, Vec<usize>) {
    let centres: Vec<f32> = noise(c * d, seed).iter().map(|v| 8.0 * v).collect();
    let z = noise(n * d, seed + 1);
    let mut x = vec![0.0; n * d];
    let truth: Vec<usize> = (0..n).map(|i| (i * 7 + i / 3) % c).collect();
    for i in 0..n {
        for j in 0..d {
            x[i * d + j] = centres[truth[i] * d + j] + spread * z[i * d + j] + shift;
        }
    }
    (x, truth)
}

/// Textbook Lloyd in f64 with a full search each iteration, run until no
/// label changes: the independent reference.
fn naive_lloyd(
    x: &[f32],
    d: usize,
    init: &[f32],
    metric: Metric,
    max_iter: usize,
) -> (Vec<i64>, f64) {
    let n = x.len() / d;
    let unit = |v: &[f64]| -> Vec<f64> {
        let s = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.iter().map(|a| a / s).collect()
    };
    let rows: Vec<Vec<f64>> = x
        .chunks(d)
        .map(|r| {
            let v: Vec<f64> = r.iter().map(|&a| f64::from(a)).collect();
            if metric == Metric::Cosine {
                unit(&v)
            } else {
                v
            }
        })
        .collect();
    let mut c: Vec<Vec<f64>> = init
        .chunks(d)
        .map(|r| {
            let v: Vec<f64> = r.iter().map(|&a| f64::from(a)).collect();
            if metric == Metric::Cosine {
                unit(&v)
            } else {
                v
            }
        })
        .collect();
    let dist = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>();
    let mut labels = vec![-1_i64; n];
    for _ in 0..=max_iter {
        let new: Vec<i64> = rows
            .iter()
            .map(|r| {
                let mut best = (f64::INFINITY, 0);
                for (j, cj) in c.iter().enumerate() {
                    let v = dist(r, cj);
                    if v < best.0 {
                        best = (v, j);
                    }
                }
                best.1 as i64
            })
            .collect();
        if new == labels {
            break;
        }
        labels = new;
        if max_iter == 0 {
            break; // assignment only
        }
        for (j, cj) in c.iter_mut().enumerate() {
            let mut s = vec![0.0; d];
            let mut cnt = 0;
            for (r, &l) in rows.iter().zip(&labels) {
                if l == j as i64 {
                    cnt += 1;
                    for (a, b) in s.iter_mut().zip(r) {
                        *a += b;
                    }
                }
            }
            let zero = s.iter().all(|&v| v == 0.0);
            if cnt > 0 && !(metric == Metric::Cosine && zero) {
                *cj = if metric == Metric::Cosine {
                    unit(&s)
                } else {
                    s.iter().map(|a| a / f64::from(cnt)).collect()
                };
            }
        }
    }
    let mut obj: f64 = rows
        .iter()
        .zip(&labels)
        .map(|(r, &l)| dist(r, &c[l as usize]))
        .sum();
    if metric == Metric::Cosine {
        obj *= 0.5;
    }
    (labels, obj)
}

fn params(k: usize, metric: Metric, init: Init<'_>) -> KMeansParams<'_> {
    KMeansParams {
        n_clusters: k,
        metric,
        init,
        n_init: 1,
        max_iter: 300,
        tol: 0.0,
        random_state: 0,
        n_threads: Some(2),
    }
}

/// k-means of the `n x d` rows `x` from the `k` given centroids `init`
/// (the default [`params`], 2 threads).
fn fit_from(
    x: &[f32],
    n: usize,
    d: usize,
    init: &[f32],
    k: usize,
    metric: Metric,
) -> Result<KMeansResult> {
    let p = params(k, metric, Init::Centroids(MatRef::new(init, k, d)?));
    kmeans(MatRef::new(x, n, d)?, &p, &Control::new())
}

#[test]
fn lloyd_matches_naive_reference() -> Result<()> {
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let (n, d, k) = (700, 6, 9);
        let (x, _) = blobs(n, d, 12, 3.0, 0.0, 11);
        let init: Vec<f32> = x[..k * d].to_vec();
        let fit = fit_from(&x, n, d, &init, k, metric)?;
        let (labels, obj) = naive_lloyd(&x, d, &init, metric, 300);
        assert!(fit.converged);
        assert_eq!(fit.labels, labels, "{metric:?}");
        assert!(
            (fit.objective - obj).abs() <= 1e-5 * obj,
            "{metric:?}: {} vs {obj}",
            fit.objective
        );
    }
    Ok(())
}

#[test]
fn euclidean_is_translation_invariant() -> Result<()> {
    // A large offset would wreck |x|² - 2x·c + |c|² without centring.
    let (n, d, k) = (600, 5, 8);
    let (x, _) = blobs(n, d, 10, 2.0, 0.0, 3);
    let (y, _) = blobs(n, d, 10, 2.0, 1000.0, 3);
    let ix: Vec<f32> = x[..k * d].to_vec();
    let iy: Vec<f32> = y[..k * d].to_vec();
    let a = fit_from(&x, n, d, &ix, k, Metric::Euclidean)?;
    let b = fit_from(&y, n, d, &iy, k, Metric::Euclidean)?;
    assert_eq!(a.labels, b.labels);
    assert!((a.objective - b.objective).abs() <= 1e-3 * a.objective);
    for (u, v) in a.centroids.iter().zip(&b.centroids) {
        assert!((u + 1000.0 - v).abs() < 1e-2);
    }
    Ok(())
}

#[test]
fn euclidean_handles_extreme_magnitudes() -> Result<()> {
    // |x| around 1e20 overflows float32 squared distances; around 1e-25 they
    // underflow. A power-of-two rescale gives the same labels as the plain
    // data, and the centroids and objective in the input's units.
    let (n, d, k) = (500, 4, 6);
    let (x, _) = blobs(n, d, 8, 1.0, 0.0, 5);
    let init: Vec<f32> = x[..k * d].to_vec();
    let plain = fit_from(&x, n, d, &init, k, Metric::Euclidean)?;
    for factor in [1e20_f32, 1e-25_f32] {
        let y: Vec<f32> = x.iter().map(|v| v * factor).collect();
        let iy: Vec<f32> = init.iter().map(|v| v * factor).collect();
        let big = fit_from(&y, n, d, &iy, k, Metric::Euclidean)?;
        assert_eq!(big.labels, plain.labels, "factor {factor}");
        let f = f64::from(factor);
        let rel = (big.objective / (f * f) - plain.objective).abs() / plain.objective;
        assert!(rel < 1e-4, "factor {factor}: objective off by {rel}");
        for (u, v) in big.centroids.iter().zip(&plain.centroids) {
            let want = f64::from(*v) * f;
            assert!((f64::from(*u) - want).abs() <= 1e-4 * f, "{u} vs {want}");
        }
    }
    Ok(())
}

#[test]
fn bounds_change_nothing_and_threads_change_nothing() -> Result<()> {
    // Several screening blocks, gather chunks and centroid column blocks.
    let (n, d, k) = (5000, 12, 600);
    let (x, _) = blobs(n, d, 40, 1.5, 0.0, 5);
    for metric in [Metric::Cosine, Metric::Euclidean] {
        for init in [Init::KMeansPlusPlus, Init::Random] {
            let mut p = params(k, metric, init);
            p.max_iter = 30;
            p.n_init = 2;
            p.n_threads = Some(1);
            let a = kmeans_impl(MatRef::new(&x, n, d)?, &p, &Control::new(), true)?;
            let plain = kmeans_impl(MatRef::new(&x, n, d)?, &p, &Control::new(), false)?;
            assert_eq!(a, plain, "bounds changed the result ({metric:?})");
            for t in [2, 3] {
                p.n_threads = Some(t);
                let b = kmeans(MatRef::new(&x, n, d)?, &p, &Control::new())?;
                assert_eq!(a, b, "{t} threads changed the result ({metric:?})");
            }
            let again = kmeans(MatRef::new(&x, n, d)?, &p, &Control::new())?;
            assert_eq!(a, again);
        }
    }
    Ok(())
}

#[test]
fn kmeans_pp_finds_separated_blobs_also_on_a_sample() -> Result<()> {
    // n > KPP_SAMPLE_MIN, so k-means++ runs on a sample.
    let (n, d, c) = (KPP_SAMPLE_MIN + 2000, 8, 12);
    let (x, truth) = blobs(n, d, c, 0.3, 0.0, 21);
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let mut p = KMeansParams::new(c);
        p.metric = metric;
        p.n_init = 3;
        let fit = kmeans(MatRef::new(&x, n, d)?, &p, &Control::new())?;
        // Same partition as the truth: a bijection between labels and blobs.
        let mut map = vec![-1_i64; c];
        for (&t, &l) in truth.iter().zip(&fit.labels) {
            assert!(map[t] == -1 || map[t] == l, "{metric:?}: blob {t} split");
            map[t] = l;
        }
        let mut seen = map.clone();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), c, "{metric:?}: blobs merged");
        assert_eq!(fit.n_empty, 0);
    }
    Ok(())
}

#[test]
fn fewer_distinct_points_than_clusters() -> Result<()> {
    let base = [1.0_f32, 0.0, 0.0, 1.0, -1.0, 0.5];
    let x: Vec<f32> = base.iter().cycle().take(6 * 10).copied().collect(); // 3 distinct rows x 10
    for metric in [Metric::Euclidean, Metric::Cosine] {
        for init in [Init::KMeansPlusPlus, Init::Random] {
            let mut p = params(5, metric, init);
            p.n_threads = None;
            let fit = kmeans(MatRef::new(&x, 30, 2)?, &p, &Control::new())?;
            assert_eq!(fit.n_empty, 2, "{metric:?}");
            assert!(fit.objective.abs() < 1e-5);
            let mut used = fit.labels.clone();
            used.sort_unstable();
            used.dedup();
            assert_eq!(used.len(), 3);
        }
    }
    Ok(())
}

#[test]
fn duplicate_init_centroids_are_reseeded() -> Result<()> {
    let (n, d, k) = (300, 3, 6);
    let (x, _) = blobs(n, d, 6, 0.5, 0.0, 8);
    let mut init = x[..k * d].to_vec();
    init.copy_within(0..d, d); // centroid 1 = centroid 0: one of them ends up empty
    let fit = fit_from(&x, n, d, &init, k, Metric::Euclidean)?;
    assert!(fit.n_reseeded >= 1);
    assert_eq!(fit.n_empty, 0);
    Ok(())
}

#[test]
fn assign_matches_brute_force() -> Result<()> {
    let (n, d, k) = (900, 7, 700);
    let x = noise(n * d, 4);
    let c = noise(k * d, 5);
    for metric in [Metric::Euclidean, Metric::Cosine] {
        let a = assign(
            MatRef::new(&x, n, d)?,
            MatRef::new(&c, k, d)?,
            metric,
            Some(2),
            &Control::new(),
        )?;
        let (labels, obj) = naive_lloyd(&x, d, &c, metric, 0);
        assert_eq!(a.labels, labels);
        assert!((a.objective - obj).abs() <= 1e-5 * obj);
    }
    Ok(())
}

#[test]
fn bad_inputs_are_errors() -> Result<()> {
    let x = noise(20, 1);
    let m = MatRef::new(&x, 10, 2)?;
    let ctl = Control::new();
    let run = |p: &KMeansParams<'_>, x: MatRef<'_>| kmeans(x, p, &ctl);
    for k in [0, 11] {
        assert!(matches!(
            run(&KMeansParams::new(k), m),
            Err(Error::Parameter(_))
        ));
    }
    let mut p = KMeansParams::new(2);
    p.n_init = 0;
    assert!(matches!(run(&p, m), Err(Error::Parameter(_))));
    let mut p = KMeansParams::new(2);
    p.max_iter = 0;
    assert!(matches!(run(&p, m), Err(Error::Parameter(_))));
    for tol in [-1.0, f64::NAN, f64::INFINITY] {
        let mut p = KMeansParams::new(2);
        p.tol = tol;
        assert!(matches!(run(&p, m), Err(Error::Parameter(_))));
    }
    let mut p = KMeansParams::new(2);
    p.n_threads = Some(0);
    assert!(matches!(run(&p, m), Err(Error::Parameter(_))));
    assert!(matches!(
        run(&KMeansParams::new(1), MatRef::new(&[], 0, 2)?),
        Err(Error::Shape(_))
    ));
    assert!(matches!(
        run(&KMeansParams::new(1), MatRef::new(&[], 3, 0)?),
        Err(Error::Shape(_))
    ));
    // NaN / Inf rows are named, for both metrics; zero rows under cosine only.
    let mut bad = x.clone();
    bad[3] = f32::NAN;
    bad[14] = f32::INFINITY;
    for metric in [Metric::Cosine, Metric::Euclidean] {
        let mut p = KMeansParams::new(2);
        p.metric = metric;
        assert_eq!(
            run(&p, MatRef::new(&bad, 10, 2)?),
            Err(Error::NonFinite {
                what: "X",
                rows: vec![1, 7]
            })
        );
    }
    let mut zero = x.clone();
    zero[4] = 0.0;
    zero[5] = 0.0;
    assert_eq!(
        run(&KMeansParams::new(2), MatRef::new(&zero, 10, 2)?),
        Err(Error::ZeroNorm {
            what: "X",
            rows: vec![2]
        })
    );
    let mut p = KMeansParams::new(2);
    p.metric = Metric::Euclidean;
    assert!(run(&p, MatRef::new(&zero, 10, 2)?).is_ok());
    // Explicit centroids: wrong shape, NaN, zero rows under cosine.
    let c3 = noise(6, 2);
    let p = params(2, Metric::Cosine, Init::Centroids(MatRef::new(&c3, 3, 2)?));
    assert!(matches!(run(&p, m), Err(Error::Shape(_))));
    let p = params(2, Metric::Cosine, Init::Centroids(MatRef::new(&c3, 2, 3)?));
    assert!(matches!(run(&p, m), Err(Error::Shape(_))));
    let cz = [1.0_f32, 0.0, 0.0, 0.0];
    let p = params(2, Metric::Cosine, Init::Centroids(MatRef::new(&cz, 2, 2)?));
    assert_eq!(
        run(&p, m),
        Err(Error::ZeroNorm {
            what: "init",
            rows: vec![1]
        })
    );
    let cn = [1.0_f32, f32::NAN, 0.0, 1.0];
    let p = params(
        2,
        Metric::Euclidean,
        Init::Centroids(MatRef::new(&cn, 2, 2)?),
    );
    assert_eq!(
        run(&p, m),
        Err(Error::NonFinite {
            what: "init",
            rows: vec![0]
        })
    );
    // Names.
    assert!(matches!(
        "manhattan".parse::<Metric>(),
        Err(Error::Parameter(_))
    ));
    assert_eq!("euclidean".parse::<Metric>(), Ok(Metric::Euclidean));
    assert!(matches!(
        Init::from_name("kmeans++"),
        Err(Error::Parameter(_))
    ));
    // assign: dimension mismatch.
    assert!(matches!(
        assign(m, MatRef::new(&c3, 2, 3)?, Metric::Cosine, None, &ctl),
        Err(Error::Shape(_))
    ));
    Ok(())
}

#[test]
fn cancelled_run_stops() -> Result<()> {
    let x = noise(400, 9);
    let ctl = Control::new();
    ctl.cancel();
    assert_eq!(
        kmeans(MatRef::new(&x, 100, 4)?, &KMeansParams::new(3), &ctl),
        Err(Error::Interrupted)
    );
    Ok(())
}

#[test]
fn tol_stops_early_and_single_cluster_works() -> Result<()> {
    let (n, d) = (2000, 4);
    let x = noise(n * d, 12);
    let mut p = KMeansParams::new(50);
    p.metric = Metric::Euclidean;
    p.tol = 0.0;
    let strict = kmeans(MatRef::new(&x, n, d)?, &p, &Control::new())?;
    p.tol = 1e-2;
    let loose = kmeans(MatRef::new(&x, n, d)?, &p, &Control::new())?;
    assert!(loose.n_iter < strict.n_iter);
    assert!(!loose.converged);
    let one = kmeans(
        MatRef::new(&x, n, d)?,
        &params(1, Metric::Euclidean, Init::Random),
        &Control::new(),
    )?;
    assert!(one.labels.iter().all(|&l| l == 0));
    assert!(one.converged);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_init_lloyd_equals_naive(n in 2usize..80, d in 1usize..6, kf in 0.0f64..1.0, seed in 0u64..1000, cos in any::<bool>()) {
        let k = 1 + ((n - 1) as f64 * kf * 0.5) as usize;
        let x: Vec<f32> = noise(n * d, seed).iter().map(|v| v + 0.01).collect();
        let metric = if cos { Metric::Cosine } else { Metric::Euclidean };
        let init: Vec<f32> = x[..k * d].to_vec();
        let p = params(k, metric, Init::Centroids(MatRef::new(&init, k, d).unwrap()));
        let fit = kmeans(MatRef::new(&x, n, d).unwrap(), &p, &Control::new()).unwrap();
        let (labels, obj) = naive_lloyd(&x, d, &init, metric, 300);
        // Exact ties are possible in tiny data; compare when no cluster was
        // re-seeded (the reference keeps empty clusters instead).
        if fit.n_reseeded == 0 {
            prop_assert_eq!(&fit.labels, &labels);
            prop_assert!((fit.objective - obj).abs() <= 1e-4 * obj + 1e-5);
        }
    }
}
