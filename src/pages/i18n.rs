//! English and French texts and formats of the portal.
//!
//! Every text is a field of [`Texts`], so a missing translation is a compile error, not a
//! blank on a page. Texts with values are methods of [`Lang`].

use crate::ledger::{AccountState, Credits, EntryKind, Timestamp};
use crate::payments::{OrderId, OrderStatus, Price};

/// A language of the portal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Fr => "fr",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        match code.trim().to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// Odoo's language code for alert e-mails to recipients added in this language.
    pub fn odoo_code(self) -> &'static str {
        match self {
            Lang::En => "en_US",
            Lang::Fr => "fr_FR",
        }
    }

    /// The best of English and French in an `Accept-Language` header (English when the
    /// browser asks for neither).
    pub fn from_accept_language(header: &str) -> Lang {
        let mut best: Option<(Lang, f32)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            if let Some(lang) = Lang::parse(primary)
                && q > 0.0
                && best.is_none_or(|(_, bq)| q > bq)
            {
                best = Some((lang, q));
            }
        }
        best.map_or(Lang::En, |(l, _)| l)
    }

    pub fn t(self) -> &'static Texts {
        match self {
            Lang::En => &EN,
            Lang::Fr => &FR,
        }
    }

    /// The other language, for the switch.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::Fr,
            Lang::Fr => Lang::En,
        }
    }

    /// `1,234.5` / `1 234,5`.
    pub fn number(self, c: Credits) -> String {
        let text = c.to_string();
        let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
        let (group, decimal) = match self {
            Lang::En => (",", "."),
            // Narrow no-break space, as French typography groups thousands.
            Lang::Fr => ("\u{202f}", ","),
        };
        let mut grouped = String::new();
        for (i, ch) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                grouped.push_str(group);
            }
            grouped.push(ch);
        }
        if frac.is_empty() {
            grouped
        } else {
            format!("{grouped}{decimal}{frac}")
        }
    }

    pub fn price(self, p: &Price) -> String {
        let sep = match self {
            Lang::En => '.',
            Lang::Fr => ',',
        };
        format!("{} {}", p.amount_text(sep), p.currency)
    }

    /// Date and time (UTC, minutes).
    pub fn time(self, t: Timestamp) -> String {
        if t.is_never() {
            return self.t().never.to_owned();
        }
        let Some(dt) = chrono::DateTime::from_timestamp_micros(t.micros()) else {
            return t.to_string();
        };
        match self {
            Lang::En => dt.format("%Y-%m-%d %H:%M").to_string(),
            Lang::Fr => dt.format("%d/%m/%Y %H:%M").to_string(),
        }
    }

    /// A short day label for a chart axis: `Jan 15` / `15 janv.`.
    pub fn short_day(self, day: i64) -> String {
        let Some(dt) = chrono::DateTime::from_timestamp(day.saturating_mul(86_400), 0) else {
            return String::new();
        };
        use chrono::Datelike;
        let month = dt.month0() as usize;
        match self {
            Lang::En => format!("{} {}", EN_MONTHS[month], dt.day()),
            Lang::Fr => format!("{} {}", dt.day(), FR_MONTHS[month]),
        }
    }

    /// A long day label for a bar's tooltip.
    pub fn day(self, day: i64) -> String {
        match chrono::DateTime::from_timestamp(day.saturating_mul(86_400), 0) {
            Some(dt) => match self {
                Lang::En => dt.format("%Y-%m-%d").to_string(),
                Lang::Fr => dt.format("%d/%m/%Y").to_string(),
            },
            None => String::new(),
        }
    }

    pub fn kind(self, kind: EntryKind) -> &'static str {
        let t = self.t();
        match kind {
            EntryKind::Grant => t.kind_grant,
            EntryKind::Topup => t.kind_topup,
            EntryKind::Trial => t.kind_trial,
            EntryKind::Capture => t.kind_capture,
            EntryKind::Expiry => t.kind_expiry,
        }
    }

    pub fn order_status(self, status: OrderStatus) -> &'static str {
        let t = self.t();
        match status {
            OrderStatus::Pending => t.status_pending,
            OrderStatus::Paid => t.status_paid,
            OrderStatus::Credited => t.status_credited,
            OrderStatus::Cancelled => t.status_cancelled,
        }
    }

    pub fn account_state(self, state: AccountState, disabled: bool) -> &'static str {
        let t = self.t();
        if disabled {
            return t.state_disabled;
        }
        match state {
            AccountState::Registered => t.state_active,
            AccountState::Unregistered => t.state_unregistered,
            AccountState::Banned => t.state_banned,
        }
    }

    pub fn needed_notice(self, needed: &str, available: &str, unit: &str) -> String {
        match self {
            Lang::En => format!(
                "This operation needs {needed} {unit}; {available} are available. Choose a pack below."
            ),
            Lang::Fr => format!(
                "Cette opération nécessite {needed} {unit} ; {available} sont disponibles. Choisissez un pack ci-dessous."
            ),
        }
    }

    pub fn trial_offer(self, credits: &str, unit: &str) -> String {
        match self {
            Lang::En => format!("Your database can receive {credits} free trial {unit}, once."),
            Lang::Fr => format!(
                "Votre base de données peut recevoir {credits} {unit} d'essai gratuits, une seule fois."
            ),
        }
    }

    pub fn total_consumed(self, total: &str, unit: &str, days: i64) -> String {
        match self {
            Lang::En => format!("{total} {unit} used over the last {days} days"),
            Lang::Fr => format!("{total} {unit} consommés sur les {days} derniers jours"),
        }
    }

    pub fn order_title(self, id: OrderId) -> String {
        match self {
            Lang::En => format!("Order #{id}"),
            Lang::Fr => format!("Commande n° {id}"),
        }
    }

    pub fn bad_amount(self, value: &str) -> String {
        match self {
            Lang::En => format!("“{value}” is not a valid amount (for example 10 or 2.5)."),
            Lang::Fr => format!("« {value} » n'est pas un montant valide (par exemple 10 ou 2,5)."),
        }
    }

    pub fn bad_email(self, value: &str) -> String {
        match self {
            Lang::En => format!("“{value}” is not an e-mail address."),
            Lang::Fr => format!("« {value} » n'est pas une adresse e-mail."),
        }
    }

    pub fn too_many_recipients(self, max: usize) -> String {
        match self {
            Lang::En => format!("At most {max} recipients."),
            Lang::Fr => format!("{max} destinataires au plus."),
        }
    }

    pub fn pack_line(self, credits: &str, unit: &str) -> String {
        format!("{credits} {unit}")
    }
}

const EN_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const FR_MONTHS: [&str; 12] = [
    "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.",
    "déc.",
];

/// Every fixed text of the portal.
pub struct Texts {
    pub brand: &'static str,
    pub switch_to: &'static str,
    pub nav_services: &'static str,
    pub sign_out: &'static str,
    pub back: &'static str,
    pub database: &'static str,
    pub companies: &'static str,
    pub never: &'static str,
    pub signed_out: &'static str,

    pub services_title: &'static str,
    pub services_intro: &'static str,
    pub col_service: &'static str,
    pub col_available: &'static str,
    pub col_reserved: &'static str,
    pub col_unit: &'static str,
    pub col_state: &'static str,
    pub col_threshold: &'static str,
    pub open: &'static str,
    pub no_services: &'static str,
    pub state_active: &'static str,
    pub state_disabled: &'static str,
    pub state_unregistered: &'static str,
    pub state_banned: &'static str,

    pub available: &'static str,
    pub reserved: &'static str,
    pub balance: &'static str,
    pub buy_title: &'static str,
    pub buy_button: &'static str,
    pub no_packs: &'static str,
    pub recommended: &'static str,
    pub trial_button: &'static str,
    pub consumption_title: &'static str,
    pub sms_title: &'static str,
    pub sms_none: &'static str,
    pub col_day: &'static str,
    pub col_sms_waiting: &'static str,
    pub col_sms_sent: &'static str,
    pub col_sms_delivered: &'static str,
    pub col_sms_failed: &'static str,
    pub col_sms_spent: &'static str,
    pub days_30: &'static str,
    pub days_90: &'static str,
    pub chart_empty: &'static str,
    pub chart_label: &'static str,
    pub journal_title: &'static str,
    pub col_time: &'static str,
    pub col_kind: &'static str,
    pub col_description: &'static str,
    pub col_amount: &'static str,
    pub col_balance_after: &'static str,
    pub download_csv: &'static str,
    pub older: &'static str,
    pub newest: &'static str,
    pub no_entries: &'static str,
    pub kind_grant: &'static str,
    pub kind_topup: &'static str,
    pub kind_trial: &'static str,
    pub kind_capture: &'static str,
    pub kind_expiry: &'static str,
    pub lots_title: &'static str,
    pub col_origin: &'static str,
    pub col_remaining: &'static str,
    pub col_expires: &'static str,
    pub no_lots: &'static str,
    pub holds_title: &'static str,
    pub col_since: &'static str,
    pub col_until: &'static str,
    pub no_holds: &'static str,
    pub orders_title: &'static str,
    pub col_order: &'static str,
    pub col_pack: &'static str,
    pub col_price: &'static str,
    pub col_status: &'static str,
    pub status_pending: &'static str,
    pub status_paid: &'static str,
    pub status_credited: &'static str,
    pub status_cancelled: &'static str,
    pub alerts_title: &'static str,
    pub alerts_help: &'static str,
    pub threshold_label: &'static str,
    pub emails_label: &'static str,
    pub save: &'static str,
    pub saved_alerts: &'static str,
    pub trial_given: &'static str,
    pub choose_pack: &'static str,

    pub order_waiting: &'static str,
    pub order_paid: &'static str,
    pub order_credited: &'static str,
    pub order_cancelled: &'static str,
    pub pay_button: &'static str,
    pub cancel_order: &'static str,
    pub payment_reference: &'static str,
    pub col_created: &'static str,
    pub back_to_account: &'static str,
    pub refresh: &'static str,

    pub err_link_title: &'static str,
    pub err_link: &'static str,
    pub err_session_title: &'static str,
    pub err_session: &'static str,
    pub err_not_found_title: &'static str,
    pub err_not_found: &'static str,
    pub err_csrf_title: &'static str,
    pub err_csrf: &'static str,
    pub err_input_title: &'static str,
    pub err_conflict_title: &'static str,
    pub nothing_changed: &'static str,
    pub err_unavailable_title: &'static str,
    pub err_unavailable: &'static str,
    pub err_internal_title: &'static str,
    pub err_internal: &'static str,
    pub err_provider_title: &'static str,
    pub err_provider: &'static str,

    pub provider_title: &'static str,
    pub provider_login_help: &'static str,
    pub key_label: &'static str,
    pub sign_in: &'static str,
    pub bad_key: &'static str,
    pub packs_title: &'static str,
    pub col_name: &'static str,
    pub col_credits: &'static str,
    pub col_currency: &'static str,
    pub col_on_sale: &'static str,
    pub add_pack: &'static str,
    pub update: &'static str,
    pub trial_title: &'static str,
    pub trial_credits_label: &'static str,
    pub trial_days_label: &'static str,
    pub key_title: &'static str,
    pub rotate: &'static str,
    pub rotate_help: &'static str,
    pub new_key_shown: &'static str,
    pub usage_title: &'static str,
    pub col_accounts: &'static str,
    pub col_consumed: &'static str,
    pub col_captures: &'static str,
    pub col_sold: &'static str,
    pub col_orders: &'static str,
    pub col_revenue: &'static str,
    pub total: &'static str,
    pub unknown_db: &'static str,
    pub period_all: &'static str,
    pub saved: &'static str,
}

pub static EN: Texts = Texts {
    brand: "IAP credits",
    switch_to: "Français",
    nav_services: "Your services",
    sign_out: "Sign out",
    back: "Back",
    database: "Database",
    companies: "Companies:",
    never: "never",
    signed_out: "You are signed out. Open the portal again from Odoo when you need it.",

    services_title: "Your IAP services",
    services_intro: "Credits of the services your Odoo database uses. Open one to buy credits, see what used them, or set a low-credit alert.",
    col_service: "Service",
    col_available: "Available",
    col_reserved: "Reserved",
    col_unit: "Unit",
    col_state: "State",
    col_threshold: "Alert below",
    open: "Open",
    no_services: "No service in this session.",
    state_active: "Active",
    state_disabled: "Disabled",
    state_unregistered: "Not registered",
    state_banned: "Blocked",

    available: "Available",
    reserved: "Reserved",
    balance: "Balance",
    buy_title: "Buy credits",
    buy_button: "Buy",
    no_packs: "No pack is on sale for this service yet.",
    recommended: "enough for this operation",
    trial_button: "Get the trial credits",
    consumption_title: "Daily consumption",
    sms_title: "SMS per day",
    sms_none: "No SMS in this period.",
    col_day: "Day",
    col_sms_waiting: "Waiting",
    col_sms_sent: "Sent",
    col_sms_delivered: "Delivered",
    col_sms_failed: "Failed",
    col_sms_spent: "Credits",
    days_30: "30 days",
    days_90: "90 days",
    chart_empty: "No consumption in this period",
    chart_label: "Credits used per day",
    journal_title: "Statement",
    col_time: "Date (UTC)",
    col_kind: "Operation",
    col_description: "Description",
    col_amount: "Amount",
    col_balance_after: "Balance after",
    download_csv: "Download CSV",
    older: "Older entries →",
    newest: "← Latest entries",
    no_entries: "No movement yet.",
    kind_grant: "Credits granted",
    kind_topup: "Purchase",
    kind_trial: "Trial credits",
    kind_capture: "Used",
    kind_expiry: "Expired",
    lots_title: "Credits and their expiry",
    col_origin: "Origin",
    col_remaining: "Remaining",
    col_expires: "Expires (UTC)",
    no_lots: "No credits left.",
    holds_title: "Reserved by operations in progress",
    col_since: "Since (UTC)",
    col_until: "Until (UTC)",
    no_holds: "Nothing reserved.",
    orders_title: "Your orders",
    col_order: "Order",
    col_pack: "Pack",
    col_price: "Price",
    col_status: "Status",
    status_pending: "Awaiting payment",
    status_paid: "Paid",
    status_credited: "Credited",
    status_cancelled: "Cancelled",
    alerts_title: "Low-credit alert",
    alerts_help: "We e-mail these addresses when the available credits fall below the threshold. A threshold of 0 turns the alert off. Odoo shows and changes the same settings.",
    threshold_label: "Threshold",
    emails_label: "Recipients (one e-mail address per line)",
    save: "Save",
    saved_alerts: "Alert settings saved.",
    trial_given: "Trial credits added.",
    choose_pack: "Choose a pack.",

    order_waiting: "We are waiting for the payment confirmation. The credits are added to your account as soon as it arrives.",
    order_paid: "Payment received; the credits are being added. If this lasts, contact your provider with the order number.",
    order_credited: "Paid and credited: the credits are on your account.",
    order_cancelled: "This order was cancelled. Nothing was charged to your account.",
    pay_button: "Pay now",
    cancel_order: "Cancel this order",
    payment_reference: "Payment reference",
    col_created: "Ordered (UTC)",
    back_to_account: "Back to the account",
    refresh: "Refresh",

    err_link_title: "This link cannot be used",
    err_link: "Open the credits page again from Odoo (Settings ▸ In-App Purchases, or the “Buy credits” button). If it still fails, ask your Odoo administrator.",
    err_session_title: "Please open the portal from Odoo",
    err_session: "For your security, the portal opens only from Odoo, and sessions end after a few hours. Use “Buy credits” or “View my services” in Odoo again.",
    err_not_found_title: "Not found",
    err_not_found: "This page does not exist or is not part of your session.",
    err_csrf_title: "Request refused",
    err_csrf: "The form had expired or did not come from this page. Nothing was changed: reload the page and try again.",
    err_input_title: "Please check what you entered",
    err_conflict_title: "That is not possible",
    nothing_changed: "Nothing was changed.",
    err_unavailable_title: "Busy",
    err_unavailable: "The service is busy. Please try again in a moment.",
    err_internal_title: "Something went wrong",
    err_internal: "Something went wrong on our side. Please try again later.",
    err_provider_title: "Please sign in",
    err_provider: "Sign in with your provider key to continue. Nothing was changed.",

    provider_title: "Provider area",
    provider_login_help: "Sign in with your service's provider key: the iapkey_… key the operator gave you, or the last one you created here.",
    key_label: "Provider key",
    sign_in: "Sign in",
    bad_key: "This key is not valid.",
    packs_title: "Packs on sale",
    col_name: "Name",
    col_credits: "Credits",
    col_currency: "Currency",
    col_on_sale: "On sale",
    add_pack: "Add the pack",
    update: "Update",
    trial_title: "Trial credits",
    trial_credits_label: "Credits per database (0: no trial)",
    trial_days_label: "Valid for, in days (0: no expiry)",
    key_title: "Provider key",
    rotate: "Replace the key",
    rotate_help: "The current key stops working at once: update your service's configuration right after.",
    new_key_shown: "Your new provider key. It is shown only this once: store it now.",
    usage_title: "Consumption and revenue per database",
    col_accounts: "Accounts",
    col_consumed: "Consumed",
    col_captures: "Charges",
    col_sold: "Sold",
    col_orders: "Orders",
    col_revenue: "Revenue",
    total: "Total",
    unknown_db: "(unknown database)",
    period_all: "All time",
    saved: "Saved.",
};

pub static FR: Texts = Texts {
    brand: "Crédits IAP",
    switch_to: "English",
    nav_services: "Vos services",
    sign_out: "Se déconnecter",
    back: "Retour",
    database: "Base de données",
    companies: "Sociétés :",
    never: "jamais",
    signed_out: "Vous êtes déconnecté. Rouvrez le portail depuis Odoo quand vous en avez besoin.",

    services_title: "Vos services IAP",
    services_intro: "Les crédits des services utilisés par votre base Odoo. Ouvrez-en un pour acheter des crédits, voir ce qui les a consommés ou régler l'alerte de crédit bas.",
    col_service: "Service",
    col_available: "Disponible",
    col_reserved: "Réservé",
    col_unit: "Unité",
    col_state: "État",
    col_threshold: "Alerte sous",
    open: "Ouvrir",
    no_services: "Aucun service dans cette session.",
    state_active: "Actif",
    state_disabled: "Désactivé",
    state_unregistered: "Non enregistré",
    state_banned: "Bloqué",

    available: "Disponible",
    reserved: "Réservé",
    balance: "Solde",
    buy_title: "Acheter des crédits",
    buy_button: "Acheter",
    no_packs: "Aucun pack n'est encore en vente pour ce service.",
    recommended: "suffisant pour cette opération",
    trial_button: "Obtenir les crédits d'essai",
    consumption_title: "Consommation par jour",
    sms_title: "SMS par jour",
    sms_none: "Aucun SMS sur cette période.",
    col_day: "Jour",
    col_sms_waiting: "En attente",
    col_sms_sent: "Envoyés",
    col_sms_delivered: "Remis",
    col_sms_failed: "Échoués",
    col_sms_spent: "Crédits",
    days_30: "30 jours",
    days_90: "90 jours",
    chart_empty: "Aucune consommation sur cette période",
    chart_label: "Crédits consommés par jour",
    journal_title: "Relevé",
    col_time: "Date (UTC)",
    col_kind: "Opération",
    col_description: "Libellé",
    col_amount: "Montant",
    col_balance_after: "Solde après",
    download_csv: "Télécharger (CSV)",
    older: "Plus anciennes →",
    newest: "← Plus récentes",
    no_entries: "Aucun mouvement pour l'instant.",
    kind_grant: "Crédits offerts",
    kind_topup: "Achat",
    kind_trial: "Crédits d'essai",
    kind_capture: "Consommation",
    kind_expiry: "Expiration",
    lots_title: "Crédits et leur échéance",
    col_origin: "Origine",
    col_remaining: "Restant",
    col_expires: "Expire le (UTC)",
    no_lots: "Plus aucun crédit.",
    holds_title: "Réservés par des opérations en cours",
    col_since: "Depuis (UTC)",
    col_until: "Jusqu'au (UTC)",
    no_holds: "Rien de réservé.",
    orders_title: "Vos commandes",
    col_order: "Commande",
    col_pack: "Pack",
    col_price: "Prix",
    col_status: "Statut",
    status_pending: "En attente de paiement",
    status_paid: "Payée",
    status_credited: "Créditée",
    status_cancelled: "Annulée",
    alerts_title: "Alerte de crédit bas",
    alerts_help: "Nous écrivons à ces adresses quand les crédits disponibles passent sous le seuil. Un seuil de 0 désactive l'alerte. Odoo affiche et modifie les mêmes réglages.",
    threshold_label: "Seuil",
    emails_label: "Destinataires (une adresse e-mail par ligne)",
    save: "Enregistrer",
    saved_alerts: "Réglages d'alerte enregistrés.",
    trial_given: "Crédits d'essai ajoutés.",
    choose_pack: "Choisissez un pack.",

    order_waiting: "Nous attendons la confirmation du paiement. Les crédits arrivent sur votre compte dès qu'elle nous parvient.",
    order_paid: "Paiement reçu ; les crédits sont en cours d'ajout. Si cela dure, contactez votre fournisseur avec le numéro de commande.",
    order_credited: "Payée et créditée : les crédits sont sur votre compte.",
    order_cancelled: "Cette commande a été annulée. Rien n'a été débité.",
    pay_button: "Payer maintenant",
    cancel_order: "Annuler cette commande",
    payment_reference: "Référence de paiement",
    col_created: "Commandée le (UTC)",
    back_to_account: "Retour au compte",
    refresh: "Actualiser",

    err_link_title: "Ce lien n'est pas utilisable",
    err_link: "Rouvrez la page des crédits depuis Odoo (Paramètres ▸ Achats intégrés, ou le bouton « Acheter des crédits »). Si l'erreur persiste, contactez l'administrateur de votre Odoo.",
    err_session_title: "Ouvrez le portail depuis Odoo",
    err_session: "Pour votre sécurité, le portail s'ouvre uniquement depuis Odoo et les sessions expirent après quelques heures. Utilisez à nouveau « Acheter des crédits » ou « Voir mes services » dans Odoo.",
    err_not_found_title: "Introuvable",
    err_not_found: "Cette page n'existe pas ou ne fait pas partie de votre session.",
    err_csrf_title: "Requête refusée",
    err_csrf: "Le formulaire avait expiré ou ne venait pas de cette page. Rien n'a été modifié : rechargez la page et réessayez.",
    err_input_title: "Vérifiez votre saisie",
    err_conflict_title: "Ce n'est pas possible",
    nothing_changed: "Rien n'a été modifié.",
    err_unavailable_title: "Service occupé",
    err_unavailable: "Le service est occupé. Réessayez dans un instant.",
    err_internal_title: "Une erreur est survenue",
    err_internal: "Une erreur est survenue de notre côté. Réessayez plus tard.",
    err_provider_title: "Connectez-vous",
    err_provider: "Connectez-vous avec votre clé fournisseur pour continuer. Rien n'a été modifié.",

    provider_title: "Espace fournisseur",
    provider_login_help: "Connectez-vous avec la clé fournisseur de votre service : la clé iapkey_… remise par l'opérateur, ou la dernière créée ici.",
    key_label: "Clé fournisseur",
    sign_in: "Se connecter",
    bad_key: "Cette clé n'est pas valide.",
    packs_title: "Packs en vente",
    col_name: "Nom",
    col_credits: "Crédits",
    col_currency: "Devise",
    col_on_sale: "En vente",
    add_pack: "Ajouter le pack",
    update: "Mettre à jour",
    trial_title: "Crédits d'essai",
    trial_credits_label: "Crédits par base (0 : pas d'essai)",
    trial_days_label: "Valables, en jours (0 : sans échéance)",
    key_title: "Clé fournisseur",
    rotate: "Remplacer la clé",
    rotate_help: "La clé actuelle cesse aussitôt de fonctionner : mettez à jour la configuration de votre service juste après.",
    new_key_shown: "Votre nouvelle clé fournisseur. Elle n'est affichée qu'une fois : conservez-la maintenant.",
    usage_title: "Consommation et chiffre d'affaires par base",
    col_accounts: "Comptes",
    col_consumed: "Consommé",
    col_captures: "Débits",
    col_sold: "Vendu",
    col_orders: "Commandes",
    col_revenue: "Chiffre d'affaires",
    total: "Total",
    unknown_db: "(base inconnue)",
    period_all: "Depuis le début",
    saved: "Enregistré.",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_preferred_known_language() {
        assert_eq!(
            Lang::from_accept_language("fr-FR,fr;q=0.9,en;q=0.8"),
            Lang::Fr
        );
        assert_eq!(
            Lang::from_accept_language("de-DE,en;q=0.5,fr;q=0.7"),
            Lang::Fr
        );
        assert_eq!(Lang::from_accept_language("en-GB,fr;q=0.5"), Lang::En);
        assert_eq!(Lang::from_accept_language("de"), Lang::En);
        assert_eq!(Lang::from_accept_language(""), Lang::En);
        assert_eq!(Lang::from_accept_language("fr;q=0"), Lang::En);
    }

    #[test]
    fn numbers_follow_the_language() {
        let c = Credits::parse_exact("1234567.5").expect("credits");
        assert_eq!(Lang::En.number(c), "1,234,567.5");
        assert_eq!(Lang::Fr.number(c), "1\u{202f}234\u{202f}567,5");
        assert_eq!(Lang::En.number(Credits::ZERO), "0");
        assert_eq!(Lang::En.number(Credits::whole(100).expect("c")), "100");
    }
}
