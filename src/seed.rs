//! `seed-demo`: a small, complete data set to explore in GraphiQL.

use std::fmt;

use chrono::Duration;
use entity::tenant_membership::MembershipRole;
use entity::{
    guardian_link, module, school, session, session_config, tenant, tenant_membership, user, video,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde_json::json;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::services::passwords::hash_password;
use crate::unit_of_work::{Outcome, write_detached};

/// The tenant the demo creates.
pub(crate) const DEMO_TENANT: &str = "Demo District";

/// One demo account.
#[derive(Debug, Clone)]
pub struct DemoLogin {
    /// What the account is for.
    pub role: &'static str,
    /// Login e-mail.
    pub email: &'static str,
    /// Login password.
    pub password: &'static str,
}

/// What `seed-demo` created.
#[derive(Debug, Clone)]
pub struct DemoData {
    /// The demo tenant.
    pub tenant_id: Uuid,
    /// Whether this run created it (false: it was already there).
    pub created: bool,
    /// The accounts.
    pub logins: Vec<DemoLogin>,
}

const LOGINS: [DemoLogin; 4] = [
    DemoLogin {
        role: "tenant admin",
        email: "admin@demo.example",
        password: "demo-admin-pass",
    },
    DemoLogin {
        role: "guardian",
        email: "guardian@demo.example",
        password: "demo-guardian-pass",
    },
    DemoLogin {
        role: "supervised user",
        email: "alex@demo.example",
        password: "demo-alex-pass",
    },
    DemoLogin {
        role: "supervised user",
        email: "sam@demo.example",
        password: "demo-sam-pass",
    },
];

impl fmt::Display for DemoData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created {
            writeln!(
                f,
                "Demo data created in tenant \"{DEMO_TENANT}\" ({}).",
                self.tenant_id
            )?;
        } else {
            writeln!(
                f,
                "Demo data already present in tenant \"{DEMO_TENANT}\" ({}).",
                self.tenant_id
            )?;
        }
        writeln!(f, "Logins:")?;
        for login in &self.logins {
            writeln!(f, "  {:<16} {:<24} {}", login.role, login.email, login.password)?;
        }
        write!(
            f,
            "Open http://127.0.0.1:8080/ after `cargo run` and try the sample query."
        )
    }
}

/// Creates the demo tenant with two schools, an admin, a guardian, two
/// supervised users, and sessions with modules and videos. Running it again
/// changes nothing.
pub async fn seed_demo(db: &DatabaseConnection) -> AppResult<DemoData> {
    let logins = LOGINS.to_vec();
    if let Some(existing) = tenant::Entity::find()
        .filter(tenant::Column::Name.eq(DEMO_TENANT))
        .one(db)
        .await?
    {
        return Ok(DemoData {
            tenant_id: existing.id,
            created: false,
            logins,
        });
    }
    // Created through the unit of work like any write (it announces nothing).
    let district = write_detached(db, chrono::Utc::now(), async |txn| {
        let district = tenant::ActiveModel {
            name: Set(DEMO_TENANT.to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let north = school::ActiveModel {
            tenant_id: Set(district.id),
            name: Set("North High School".to_owned()),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        school::ActiveModel {
            tenant_id: Set(district.id),
            name: Set("South Middle School".to_owned()),
            is_shared_device_mode: Set(Some(true)),
            ..Default::default()
        }
        .insert(txn)
        .await?;

        let roles = [
            MembershipRole::Admin,
            MembershipRole::Guardian,
            MembershipRole::Member,
            MembershipRole::Member,
        ];
        let names = ["Avery Admin", "Gale Guardian", "Alex Student", "Sam Student"];
        let mut users = Vec::new();
        for ((login, role), name) in LOGINS.iter().zip(roles).zip(names) {
            let account = user::ActiveModel {
                email: Set(login.email.to_owned()),
                name: Set(Some(name.to_owned())),
                password_hash: Set(hash_password(login.password)?),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            tenant_membership::ActiveModel {
                user_id: Set(account.id),
                tenant_id: Set(district.id),
                role: Set(role),
                is_default: Set(true),
                school_id: Set(Some(north.id)),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            users.push(account);
        }
        let [_admin, guardian, alex, sam] = users.as_slice() else {
            return Err(AppError::internal(anyhow::anyhow!("demo users were not created")));
        };
        for supervised in [alex, sam] {
            guardian_link::ActiveModel {
                tenant_id: Set(district.id),
                guardian_id: Set(guardian.id),
                user_id: Set(supervised.id),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }

        let now = chrono::Utc::now();
        let plans = [
            (
                alex,
                "Study mode",
                session::SessionStatus::Active,
                now,
                Some(now + Duration::hours(2)),
            ),
            (
                alex,
                "Weekend reading",
                session::SessionStatus::Ended,
                now - Duration::days(2),
                Some(now - Duration::days(2) + Duration::hours(1)),
            ),
            (
                sam,
                "Homework hour",
                session::SessionStatus::Active,
                now,
                Some(now + Duration::hours(1)),
            ),
        ];
        for (supervised, name, status, start, end) in plans {
            let row = session::ActiveModel {
                tenant_id: Set(district.id),
                user_id: Set(supervised.id),
                guardian_id: Set(Some(guardian.id)),
                name: Set(name.to_owned()),
                session_type: Set("Linear Flow".to_owned()),
                status: Set(status),
                start_time: Set(start),
                end_time: Set(end),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            session_config::ActiveModel {
                session_id: Set(row.id),
                label: Set(Some(name.to_lowercase())),
                lock_profile: Set(Some(
                    json!({ "lockedApps": ["tiktok", "youtube"], "whitelist": ["duolingo"] }),
                )),
                notify_on_unlock: Set(true),
                custom_message: Set(Some(format!(
                    "{} unlocked early",
                    supervised.name.as_deref().unwrap_or("Your child")
                ))),
                ..Default::default()
            }
            .insert(txn)
            .await?;
            for (index, module_name) in ["Warm-up", "Lesson", "Quiz"].into_iter().enumerate() {
                let part = module::ActiveModel {
                    session_id: Set(row.id),
                    name: Set(module_name.to_owned()),
                    order_index: Set(i32::try_from(index).unwrap_or(i32::MAX)),
                    ..Default::default()
                }
                .insert(txn)
                .await?;
                for clip in 1..=2 {
                    let file_name = format!("{}-{clip}.mp4", module_name.to_lowercase());
                    video::ActiveModel {
                        module_id: Set(part.id),
                        file_url: Set(format!("https://videos.demo.example/{}/{file_name}", row.id)),
                        file_name: Set(file_name),
                        file_size: Set(25 * 1024 * 1024 * i64::from(clip)),
                        mime_type: Set("video/mp4".to_owned()),
                        ..Default::default()
                    }
                    .insert(txn)
                    .await?;
                }
            }
        }
        Ok(Outcome::quiet(district))
    })
    .await?;
    Ok(DemoData {
        tenant_id: district.id,
        created: true,
        logins,
    })
}
