//! Feature standardization for features that are several layers' activations side by side.
//!
//! `x` is `(n, n_layers * hidden)`. Per neuron: every column gets its own mean and standard deviation. Per layer:
//! every layer's block of `hidden` columns gets one mean and one standard deviation, over all its values, which
//! keeps the relative scale of the neurons within a layer. Standard deviations use `ddof = 0`, are computed in
//! float64 with two passes, and one that is zero (a constant feature or block) is replaced by 1.

use ndarray::{Array1, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::check_design;
use crate::error::{Error, Result};

/// How to group features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleMode {
    /// One mean and scale per feature.
    PerNeuron,
    /// One mean and scale per layer block.
    PerLayer,
}

impl ScaleMode {
    /// The accepted names.
    pub const NAMES: [&'static str; 2] = ["per_neuron", "per_layer"];
}

impl std::str::FromStr for ScaleMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "per_neuron" => Ok(ScaleMode::PerNeuron),
            "per_layer" => Ok(ScaleMode::PerLayer),
            _ => Err(Error::UnknownOption { kind: "scaling mode", given: s.to_owned(), choices: Self::NAMES.to_vec() }),
        }
    }
}

/// Per-feature `(mean, scale)` (per-layer values repeated over their block), so applying is uniform.
///
/// # Errors
/// [`Error::InvalidInput`] for non-finite values or a feature count not divisible by `n_layers`.
pub fn fit_scaler(x: ArrayView2<'_, f32>, n_layers: usize, mode: ScaleMode) -> Result<(Array1<f64>, Array1<f64>)> {
    let (n, d) = check_design(x, 1)?;
    if n_layers == 0 || d % n_layers != 0 {
        return Err(Error::InvalidInput(format!(
            "X has {d} features, which is not n_layers = {n_layers} blocks of equal width"
        )));
    }
    let nf = n as f64;
    let col_mean: Vec<f64> =
        (0..d).into_par_iter().map(|j| x.column(j).iter().map(|&v| f64::from(v)).sum::<f64>() / nf).collect();
    let (mean, var): (Vec<f64>, Vec<f64>) = match mode {
        ScaleMode::PerNeuron => {
            let var: Vec<f64> = (0..d)
                .into_par_iter()
                .map(|j| x.column(j).iter().map(|&v| (f64::from(v) - col_mean[j]).powi(2)).sum::<f64>() / nf)
                .collect();
            (col_mean, var)
        }
        ScaleMode::PerLayer => {
            let h = d / n_layers;
            let stats: Vec<(f64, f64)> = (0..n_layers)
                .into_par_iter()
                .map(|l| {
                    let block = x.slice(ndarray::s![.., l * h..(l + 1) * h]);
                    let m = col_mean[l * h..(l + 1) * h].iter().sum::<f64>() / h as f64;
                    let v = block.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / (nf * h as f64);
                    (m, v)
                })
                .collect();
            (0..d).map(|j| stats[j / h]).unzip()
        }
    };
    let scale: Vec<f64> = var.into_iter().map(|v| if v > 0.0 { v.sqrt() } else { 1.0 }).collect();
    Ok((Array1::from(mean), Array1::from(scale)))
}

/// `x = (x - mean) / scale`, in place.
///
/// # Errors
/// [`Error::Shape`] when `mean`/`scale` do not have one value per column.
pub fn transform_in_place(mut x: ArrayViewMut2<'_, f32>, mean: &Array1<f64>, scale: &Array1<f64>) -> Result<()> {
    let d = x.ncols();
    if mean.len() != d || scale.len() != d {
        return Err(Error::shape("X", format!("(n, {}) (as fitted)", mean.len()), format!("{:?}", x.dim())));
    }
    x.axis_iter_mut(Axis(0)).into_par_iter().for_each(|mut row| {
        for ((v, &m), &s) in row.iter_mut().zip(mean).zip(scale) {
            *v = ((f64::from(*v) - m) / s) as f32;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn per_neuron_and_per_layer_statistics() {
        let x = Array2::from_shape_vec((2, 4), vec![1.0f32, 2.0, 5.0, 5.0, 3.0, 6.0, 5.0, 9.0]).unwrap();
        let (m, s) = fit_scaler(x.view(), 2, ScaleMode::PerNeuron).unwrap();
        assert_eq!(m.to_vec(), vec![2.0, 4.0, 5.0, 7.0]);
        assert_eq!(s.to_vec(), vec![1.0, 2.0, 1.0, 2.0]); // the constant column gets 1
        let (m, s) = fit_scaler(x.view(), 2, ScaleMode::PerLayer).unwrap();
        assert_eq!(m.to_vec(), vec![3.0, 3.0, 6.0, 6.0]);
        let v0: f64 = [1.0f64, 2.0, 3.0, 6.0].iter().map(|v| (v - 3.0).powi(2)).sum::<f64>() / 4.0;
        assert!((s[0] - v0.sqrt()).abs() < 1e-12 && (s[0] - s[1]).abs() < 1e-15);
        let mut y = x.clone();
        transform_in_place(y.view_mut(), &m, &s).unwrap();
        assert!((y[(0, 0)] - ((1.0 - 3.0) / v0.sqrt()) as f32).abs() < 1e-6);
        assert!(fit_scaler(x.view(), 3, ScaleMode::PerLayer).unwrap_err().to_string().contains("n_layers = 3"));
    }
}
