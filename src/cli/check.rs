use super::{ConfigArgs, load_settings};

pub fn run(args: &ConfigArgs) -> anyhow::Result<()> {
    let settings = load_settings(&args.flags())?;
    crate::app::master_key(&settings)?;
    for d in &settings.subscriptions {
        if let Some(var) = &d.secret_env
            && settings.env.var(var).is_none()
        {
            anyhow::bail!("declared subscription `{}`: the environment variable `{var}` is not set", d.name);
        }
    }
    println!(
        "configuration is valid: listen {}, data_dir {}, {} declared subscription(s)",
        settings.listen,
        settings.data_dir.display(),
        settings.subscriptions.len()
    );
    Ok(())
}
