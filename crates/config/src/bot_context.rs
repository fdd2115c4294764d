//! The `botContext` functions a script may call: every function the
//! product documents (its "Scripting Functions" pages), its deprecated
//! ones, and patchbay's own, each with how many arguments it takes and how
//! patchbay provides it (docs/botcontext.md has the same table, and a test
//! holds the two together).

/// How patchbay provides a `botContext` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provision {
    /// Meaningful anywhere: as the product does.
    Anywhere,
    /// Platform data: read from the attributes the caller sends with the
    /// turn.
    PlatformData,
    /// A platform action: an entry of the turn's `actions`.
    PlatformAction,
    /// The Conversation Context Service: patchbay's namespaced store.
    ContextService,
    /// Intent and NLU getters: what the starter match knows, or the
    /// product's "nothing".
    Nlu,
    /// patchbay's own (not in the product's pages).
    Patchbay,
}

/// Where the product documents a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Documented {
    /// On the product's current pages.
    Current,
    /// On its "Deprecated functions" page, or only on older pages.
    Deprecated,
    /// Not by the product.
    No,
}

/// One `botContext` function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BotContextFunction {
    /// Its name, as scripts call it.
    pub name: &'static str,
    /// The fewest arguments it takes.
    pub min_args: usize,
    /// The most arguments it takes.
    pub max_args: usize,
    /// How patchbay provides it.
    pub provision: Provision,
    /// Whether the product documents it.
    pub documented: Documented,
}

const fn f(
    name: &'static str,
    min_args: usize,
    max_args: usize,
    provision: Provision,
    documented: Documented,
) -> BotContextFunction {
    BotContextFunction {
        name,
        min_args,
        max_args,
        provision,
        documented,
    }
}

use Documented::{Current, Deprecated};
use Provision::{Anywhere, ContextService, Nlu, PlatformAction, PlatformData};

/// Every `botContext` function, in the order of the product's pages.
pub const BOT_CONTEXT_FUNCTIONS: &[BotContextFunction] = &[
    // "Get & Set Session Data"
    f("getBotVariable", 1, 1, Anywhere, Current),
    f("setBotVariable", 2, 4, Anywhere, Current),
    f("getCurrentUserMessage", 0, 0, Anywhere, Current),
    f(
        "setBotTransferIntentbyDomain",
        2,
        2,
        PlatformAction,
        Current,
    ),
    f("setBotTransferIntentId", 1, 1, PlatformAction, Current),
    f("setBotTransferUserMessage", 1, 1, PlatformAction, Current),
    f("getEnvVariable", 1, 1, Anywhere, Current),
    f("getChatBotId", 0, 0, Anywhere, Current),
    f("getConversationId", 0, 0, Anywhere, Current),
    f("getLPAccountId", 0, 0, PlatformData, Current),
    f("getLPEngagementAttribute", 1, 1, PlatformData, Current),
    f("getMetadata", 1, 1, PlatformData, Current),
    f("getDialogStarterIntent", 0, 0, Nlu, Current),
    f("getNamedEntities", 1, 1, Nlu, Current),
    f("getNlpResponse", 0, 0, Nlu, Current),
    f("getSentiment", 0, 0, Nlu, Current),
    f("getQuickReplyPayload", 0, 0, Anywhere, Current),
    f("getDisambiguatedIntentName", 0, 0, Nlu, Current),
    f("getDisambiguatedIntentId", 0, 0, Nlu, Current),
    f("getWebViewVariable", 1, 1, PlatformData, Current),
    f("getWebViewVariables", 0, 0, PlatformData, Current),
    f("getHoursType", 2, 2, Anywhere, Current),
    // "Manage Conversation Flow"
    f("setMessageDelay", 1, 1, Anywhere, Current),
    f("setAllowMaxTextResponse", 1, 1, Anywhere, Current),
    f("setTriggerNextMessage", 1, 1, Anywhere, Current),
    f("evaluateOptions", 2, 2, Anywhere, Current),
    f("addQuickReplies", 1, 1, Anywhere, Current),
    f("getButtonPayload", 0, 0, Anywhere, Current),
    // "Send Messages"
    f("sendMessage", 1, 1, Anywhere, Current),
    f("sendMessages", 1, 1, Anywhere, Current),
    f("sendMessageWithQuickReplies", 2, 2, Anywhere, Current),
    f("sendImmediateReply", 1, 1, Anywhere, Current),
    // "Get User Data"
    f("getUserChannel", 0, 0, PlatformData, Current),
    f("getUserPlatformId", 0, 0, Anywhere, Current),
    f("getLPUserPersonalInfo", 0, 0, PlatformData, Current),
    f("getLPCustomerInfo", 0, 0, PlatformData, Current),
    // "Get Integration Data"
    f("isApiExecutionSuccessful", 0, 0, Anywhere, Current),
    f("getApiStatusCode", 0, 0, Anywhere, Current),
    f("getFileCaption", 0, 0, PlatformData, Current),
    f("getFileType", 0, 0, PlatformData, Current),
    // "Log Debug"
    f("logCustomEvent", 2, 3, Anywhere, Current),
    f("printDebugMessage", 1, 1, Anywhere, Current),
    // "askMaven"
    f("askMaven", 0, 3, PlatformData, Current),
    // "Manage the Conversation Context Service"
    f("isContextApiEnabled", 0, 0, ContextService, Current),
    f("registerContextNamespace", 1, 2, ContextService, Current),
    f("deleteContextNamespace", 1, 1, ContextService, Current),
    f("setGlobalContextData", 3, 3, ContextService, Current),
    f("setContextDataForUser", 3, 3, ContextService, Current),
    f(
        "setContextDataForConversation",
        3,
        3,
        ContextService,
        Current,
    ),
    f("getGlobalContextData", 2, 2, ContextService, Current),
    f("getContextDataForUser", 1, 2, ContextService, Current),
    f(
        "getContextDataForConversation",
        1,
        2,
        ContextService,
        Current,
    ),
    f("deleteGlobalContextData", 2, 2, ContextService, Current),
    f("deleteContextDataForUser", 2, 2, ContextService, Current),
    f(
        "deleteContextDataForConversation",
        2,
        2,
        ContextService,
        Current,
    ),
    f("deleteAllContextDataForUser", 1, 1, ContextService, Current),
    f(
        "deleteAllContextDataForConversation",
        1,
        1,
        ContextService,
        Current,
    ),
    // Deprecated, or only on older pages
    f("getChannel", 0, 0, PlatformData, Deprecated),
    f("addQuickReples", 1, 1, Anywhere, Deprecated),
    f("logEscalationEvent", 2, 2, PlatformAction, Deprecated),
    // patchbay's own
    f("getSlotValue", 1, 1, Provision::Patchbay, Documented::No),
    f("setSlotValue", 2, 2, Provision::Patchbay, Documented::No),
];

/// The function of that name.
pub fn bot_context_function(name: &str) -> Option<&'static BotContextFunction> {
    BOT_CONTEXT_FUNCTIONS
        .iter()
        .find(|function| function.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_of_the_products_current_pages_is_listed_once() {
        let current = BOT_CONTEXT_FUNCTIONS
            .iter()
            .filter(|function| function.documented == Documented::Current)
            .count();
        assert_eq!(current, 57, "the product's current pages document 57");
        let mut names: Vec<_> = BOT_CONTEXT_FUNCTIONS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BOT_CONTEXT_FUNCTIONS.len());
        assert!(
            BOT_CONTEXT_FUNCTIONS
                .iter()
                .all(|f| f.min_args <= f.max_args)
        );
    }
}
